package io.modelmerge.cli;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.storage.checkpoint.CheckpointWriter;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Benchmark inputs: Llama-shaped checkpoints of a requested size (embeddings, per layer q/k/v/o and
 * gate/up/down projections with intermediate = 8/3 hidden, norms, lm_head). Model 0 is a "base"; model m > 0
 * is the base plus small per-model noise, like fine-tunes of it. Values come from a counter-based hash, so
 * any element of any model can be generated independently and in parallel.
 */
final class SyntheticCheckpoints {
    private static final int CHUNK = 1 << 20;

    private SyntheticCheckpoints() {
    }

    static List<TensorSpec> llama(long bytes, DType dtype) {
        long params = bytes / (dtype.bits() / 8);
        int hidden = params >= 400_000_000L ? 2048 : params >= 50_000_000L ? 1024 : 256;
        int intermediate = hidden * 8 / 3 / 64 * 64;
        // A 32000-token vocabulary, or less when the model is too small to hold it besides a layer.
        int vocab = (int) Math.max(256, Math.min(32000, params / (8L * hidden)));
        long perLayer = 4L * hidden * hidden + 3L * hidden * intermediate + 2L * hidden;
        long outside = 2L * vocab * hidden + hidden;
        int layers = (int) Math.max(1, (params - outside) / perLayer);
        List<TensorSpec> specs = new ArrayList<>();
        specs.add(new TensorSpec("model.embed_tokens.weight", dtype, new long[] {vocab, hidden}));
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            for (String proj : new String[] {"q_proj", "k_proj", "v_proj", "o_proj"}) {
                specs.add(new TensorSpec(p + "self_attn." + proj + ".weight", dtype, new long[] {hidden, hidden}));
            }
            specs.add(new TensorSpec(p + "mlp.gate_proj.weight", dtype, new long[] {intermediate, hidden}));
            specs.add(new TensorSpec(p + "mlp.up_proj.weight", dtype, new long[] {intermediate, hidden}));
            specs.add(new TensorSpec(p + "mlp.down_proj.weight", dtype, new long[] {hidden, intermediate}));
            specs.add(new TensorSpec(p + "input_layernorm.weight", dtype, new long[] {hidden}));
            specs.add(new TensorSpec(p + "post_attention_layernorm.weight", dtype, new long[] {hidden}));
        }
        specs.add(new TensorSpec("model.norm.weight", dtype, new long[] {hidden}));
        specs.add(new TensorSpec("lm_head.weight", dtype, new long[] {vocab, hidden}));
        return specs;
    }

    /** Writes model {@code model} (0 = base) of {@code specs} into {@code dir}, as one file. */
    static void write(Path dir, List<TensorSpec> specs, int model) throws IOException {
        try (CheckpointWriter writer = CheckpointWriter.create(dir, specs, Map.of("format", "pt"), Long.MAX_VALUE)) {
            for (int t = 0; t < specs.size(); t++) {
                TensorSpec spec = specs.get(t);
                long elements = spec.byteLength() / (spec.dtype().bits() / 8);
                int chunks = (int) ((elements + CHUNK - 1) / CHUNK);
                int tensor = t;
                IntStream.range(0, chunks).parallel().forEach(c -> {
                    long from = (long) c * CHUNK;
                    int length = (int) Math.min(CHUNK, elements - from);
                    float[] values = new float[length];
                    for (int i = 0; i < length; i++) {
                        long index = from + i;
                        float base = uniform(tensor, 0, index) * 0.05f;
                        values[i] = model == 0 ? base : base + uniform(tensor, model, index) * 0.002f;
                    }
                    try (Arena arena = Arena.ofConfined()) {
                        MemorySegment data = arena.allocate((long) length * (spec.dtype().bits() / 8));
                        Floats.narrow(values, length, data, spec.dtype(), 0);
                        writer.write(spec.name(), from * (spec.dtype().bits() / 8), data);
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                });
            }
            writer.commit();
        }
    }

    /** A value in [-1, 1) from (tensor, model, index): SplitMix64's finaliser. */
    private static float uniform(int tensor, int model, long index) {
        long z = index * 0x9E3779B97F4A7C15L + ((long) tensor << 40) + ((long) model << 56);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z ^= z >>> 31;
        return (z >>> 40) / (float) (1 << 23) - 1f;
    }
}
