package io.modelmerge.engine.exec;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.storage.checkpoint.CheckpointWriter;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.ToDoubleBiFunction;

/** Small checkpoints with real architectures' tensor names, for merge tests. */
final class SyntheticModels {
    private SyntheticModels() {
    }

    /** Llama tensor names: embed, per layer attention and MLP projections and norms, final norm, lm_head. */
    static List<TensorSpec> llama(int layers, int hidden, int vocab, DType dtype) {
        List<TensorSpec> specs = new ArrayList<>();
        specs.add(new TensorSpec("model.embed_tokens.weight", dtype, new long[] {vocab, hidden}));
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            for (String proj : new String[] {"q_proj", "k_proj", "v_proj", "o_proj"}) {
                specs.add(new TensorSpec(p + "self_attn." + proj + ".weight", dtype, new long[] {hidden, hidden}));
            }
            specs.add(new TensorSpec(p + "mlp.gate_proj.weight", dtype, new long[] {2 * hidden, hidden}));
            specs.add(new TensorSpec(p + "mlp.up_proj.weight", dtype, new long[] {2 * hidden, hidden}));
            specs.add(new TensorSpec(p + "mlp.down_proj.weight", dtype, new long[] {hidden, 2 * hidden}));
            specs.add(new TensorSpec(p + "input_layernorm.weight", dtype, new long[] {hidden}));
            specs.add(new TensorSpec(p + "post_attention_layernorm.weight", dtype, new long[] {hidden}));
        }
        specs.add(new TensorSpec("model.norm.weight", dtype, new long[] {hidden}));
        specs.add(new TensorSpec("lm_head.weight", dtype, new long[] {vocab, hidden}));
        return specs;
    }

    /** Writes a checkpoint whose element i of tensor t is {@code value(t, i)}, plus a config.json. */
    static Path write(Path dir, List<TensorSpec> specs, ToDoubleBiFunction<String, Integer> value) throws IOException {
        try (CheckpointWriter writer = CheckpointWriter.create(dir, specs, Map.of("format", "pt"), Long.MAX_VALUE);
             Arena arena = Arena.ofConfined()) {
            for (TensorSpec spec : specs) {
                int n = Math.toIntExact(spec.byteLength() / (spec.dtype().bits() / 8));
                float[] values = new float[n];
                for (int i = 0; i < n; i++) {
                    values[i] = (float) value.applyAsDouble(spec.name(), i);
                }
                MemorySegment data = arena.allocate(spec.byteLength());
                Floats.narrow(values, n, data, spec.dtype(), 0);
                writer.write(spec.name(), 0, data);
            }
            writer.commit();
        }
        Files.writeString(dir.resolve("config.json"), "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\"}");
        return dir;
    }

    /** Deterministic pseudo-random values in [-1, 1) that differ per model seed, tensor and element. */
    static double noise(long seed, String tensor, int i) {
        return new Random(seed * 1_000_003L + tensor.hashCode() * 31L + i).nextDouble() * 2 - 1;
    }
}
