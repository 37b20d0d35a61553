package io.modelmerge.engine.synthetic;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.storage.checkpoint.CheckpointWriter;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Llama-shaped checkpoints made up on the spot, with real tensor names (embeddings; per layer q/k/v/o, gate/up/down
 * projections and two norms; final norm; lm_head): what {@code mergectl generate} and {@code bench} write, and
 * what the engine's tests merge. Every element comes from a function of the tensor's name and the element's
 * index, so chunks are written in parallel and the result never depends on the order.
 */
public final class SyntheticCheckpoints {
    private static final int CHUNK = 1 << 20;

    private SyntheticCheckpoints() {
    }

    /** The value of element {@code index} of tensor {@code tensor}; called from several threads. */
    @FunctionalInterface
    public interface ElementValues {
        double at(String tensor, long index);
    }

    /** A Llama of {@code layers} layers of width {@code hidden}, MLP width {@code intermediate}, {@code vocab} tokens. */
    public static List<TensorSpec> llama(int layers, int hidden, int intermediate, int vocab, DType dtype) {
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

    /**
     * A Llama of about {@code bytes}: width 256, 1024 or 2048 by size, MLP width 8/3 of it, a 32000-token
     * vocabulary or less when the model is too small to hold it besides a layer, and as many layers as fit.
     */
    public static List<TensorSpec> llamaOfSize(long bytes, DType dtype) {
        long params = bytes / (dtype.bits() / 8);
        int hidden = params >= 400_000_000L ? 2048 : params >= 50_000_000L ? 1024 : 256;
        int intermediate = hidden * 8 / 3 / 64 * 64;
        int vocab = (int) Math.max(256, Math.min(32000, params / (8L * hidden)));
        long perLayer = 4L * hidden * hidden + 3L * hidden * intermediate + 2L * hidden;
        long outside = 2L * vocab * hidden + hidden;
        int layers = (int) Math.max(1, (params - outside) / perLayer);
        return llama(layers, hidden, intermediate, vocab, dtype);
    }

    /** Llama-2-7B's shapes: 32 layers of width 4096, MLP width 11008, 32000 tokens (6.74 B parameters). */
    public static List<TensorSpec> llama7b(DType dtype) {
        return llama(32, 4096, 11008, 32000, dtype);
    }

    /**
     * Model {@code model} of a family: model 0 a "base" of values in ±0.05, model m > 0 the base plus its own
     * noise in ±0.002, like a fine-tune of it.
     */
    public static ElementValues fineTune(int model) {
        return (tensor, index) -> {
            double base = uniform(tensor, 0, index) * 0.05;
            return model == 0 ? base : base + uniform(tensor, model, index) * 0.002;
        };
    }

    /** Writes {@code specs} into {@code dir} as one safetensors file, plus a minimal Llama config.json. */
    public static Path write(Path dir, List<TensorSpec> specs, ElementValues values) throws IOException {
        return write(dir, specs, values, Long.MAX_VALUE);
    }

    /**
     * Writes {@code specs} into {@code dir} in shards of at most {@code shardBytes} (named and indexed as the Hub
     * names them when there are several), plus a minimal Llama config.json.
     */
    public static Path write(Path dir, List<TensorSpec> specs, ElementValues values, long shardBytes)
            throws IOException {
        try (CheckpointWriter writer = CheckpointWriter.create(dir, specs, Map.of("format", "pt"), shardBytes)) {
            for (TensorSpec spec : specs) {
                int bytesPerElement = spec.dtype().bits() / 8;
                long elements = spec.byteLength() / bytesPerElement;
                int chunks = (int) ((elements + CHUNK - 1) / CHUNK);
                IntStream.range(0, chunks).parallel().forEach(c -> {
                    long from = (long) c * CHUNK;
                    int length = (int) Math.min(CHUNK, elements - from);
                    float[] chunk = new float[length];
                    for (int i = 0; i < length; i++) {
                        chunk[i] = (float) values.at(spec.name(), from + i);
                    }
                    try (Arena arena = Arena.ofConfined()) {
                        MemorySegment data = arena.allocate((long) length * bytesPerElement);
                        Floats.narrow(chunk, length, data, spec.dtype(), 0);
                        writer.write(spec.name(), from * bytesPerElement, data);
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                });
            }
            writer.commit();
        }
        Files.writeString(dir.resolve("config.json"), "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\"}");
        return dir;
    }

    /** A value in [-1, 1) from (tensor, model, index): SplitMix64's finaliser. */
    private static double uniform(String tensor, int model, long index) {
        long z = index * 0x9E3779B97F4A7C15L + ((long) tensor.hashCode() << 24) + ((long) model << 56);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z ^= z >>> 31;
        return (z >>> 40) / (double) (1 << 23) - 1;
    }
}
