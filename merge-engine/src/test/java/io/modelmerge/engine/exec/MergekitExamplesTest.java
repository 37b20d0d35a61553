package io.modelmerge.engine.exec;

import static io.modelmerge.engine.exec.StoredTensors.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The recipes of mergekit's {@code examples/} directory, key for key and value for value, run unchanged on small
 * Llama-shaped models with the tensor names and layer counts the recipes expect (40 layers for the 13B recipes).
 * The Hub names they use are mapped to those local models the way a service maps registry refs to storage
 * ({@link Recipe#withLocations}); the YAML text is not edited.
 */
class MergekitExamplesTest {
    private static final String Q = ".self_attn.q_proj.weight";

    @TempDir
    static Path models;
    private static final Map<String, Path> BY_NAME = new HashMap<>();

    @TempDir
    Path dir;

    private static synchronized Path model(String name) throws IOException {
        Path found = BY_NAME.get(name);
        if (found == null) {
            long seed = BY_NAME.size() + 1;
            found = SyntheticCheckpoints.write(models.resolve(name.replace('/', '_')),
                    SyntheticCheckpoints.llama(40, 8, 16, 16, DType.BF16), (t, i) -> TestNoise.of(seed, t, i));
            Files.writeString(found.resolve("config.json"), "{\"model_type\": \"llama\", \"num_hidden_layers\": 40}");
            BY_NAME.put(name, found);
        }
        return found;
    }

    private Path run(String yaml, String... names) throws Exception {
        Map<String, String> locations = new HashMap<>();
        for (String name : names) {
            locations.put(name, model(name).toString());
        }
        Path out = dir.resolve("out");
        new MergeExecutor(MergeOptions.defaults().withThreads(2).withMemory(64L << 20), p -> { }, new AtomicBoolean())
                .run(RecipeParser.parse(yaml).withLocations(locations), out);
        assertEquals(yaml, Files.readString(out.resolve("merge_recipe.yml")), "the recipe is kept as written");
        return out;
    }

    private static DType dtype(Path dir, String name) throws IOException {
        try (SafetensorsFile file = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
            return file.tensor(name).dtype();
        }
    }

    @Test
    void arceeFusion() throws Exception {
        Path out = run("""
                models:
                  - model: model_a
                  - model: model_b
                merge_method: arcee_fusion
                base_model: model_a
                dtype: bfloat16
                """, "model_a", "model_b");
        assertEquals(DType.BF16, dtype(out, "lm_head.weight"));
    }

    @Test
    void bioMerge() throws Exception {
        Path out = run("""
                models:
                  - model: mistralai/Mistral-7B-Instruct-v0.2
                    parameters:
                      density: 0.5
                      weight: 0.5
                  - model: BioMistral/BioMistral-7B
                    parameters:
                      density: 0.5
                      weight: 0.5
                merge_method: ties
                base_model: mistralai/Mistral-7B-v0.1
                parameters:
                  normalize: false
                  int8_mask: true
                dtype: float16
                """, "mistralai/Mistral-7B-Instruct-v0.2", "BioMistral/BioMistral-7B", "mistralai/Mistral-7B-v0.1");
        assertEquals(DType.F16, dtype(out, "model.layers.39" + Q));
    }

    @Test
    void gradientSlerp() throws Exception {
        Path out = run("""
                slices:
                  - sources:
                      - model: psmathur/orca_mini_v3_13b
                        layer_range: [0, 40]
                      - model: garage-bAInd/Platypus2-13B
                        layer_range: [0, 40]
                # or, the equivalent models: syntax:
                # models:
                #   - model: psmathur/orca_mini_v3_13b
                #   - model: garage-bAInd/Platypus2-13B
                merge_method: slerp
                base_model: psmathur/orca_mini_v3_13b
                parameters:
                  t:
                    - filter: self_attn
                      value: [0, 0.5, 0.3, 0.7, 1]
                    - filter: mlp
                      value: [1, 0.5, 0.7, 0.3, 0]
                    - value: 0.5 # fallback for rest of tensors
                dtype: float16
                """, "psmathur/orca_mini_v3_13b", "garage-bAInd/Platypus2-13B");
        // t = 0 on layer 0's attention and 1 on layer 39's: the base's and the other model's, rounded to F16
        assertArrayEquals(f16(tensor(model("psmathur/orca_mini_v3_13b"), "model.layers.0" + Q)),
                tensor(out, "model.layers.0" + Q));
        assertArrayEquals(f16(tensor(model("garage-bAInd/Platypus2-13B"), "model.layers.39" + Q)),
                tensor(out, "model.layers.39" + Q));
    }

    private static float[] f16(float[] values) {
        float[] out = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = Float.float16ToFloat(Float.floatToFloat16(values[i]));
        }
        return out;
    }

    @Test
    void linear() throws Exception {
        Path out = run("""
                models:
                  - model: psmathur/orca_mini_v3_13b
                    parameters:
                      weight: 1.0
                  - model: WizardLM/WizardLM-13B-V1.2
                    parameters:
                      weight: 0.3
                  - model: garage-bAInd/Platypus2-13B
                    parameters:
                      weight: 0.5
                merge_method: linear
                dtype: float16
                """, "psmathur/orca_mini_v3_13b", "WizardLM/WizardLM-13B-V1.2", "garage-bAInd/Platypus2-13B");
        float[] a = tensor(model("psmathur/orca_mini_v3_13b"), "lm_head.weight");
        float[] b = tensor(model("WizardLM/WizardLM-13B-V1.2"), "lm_head.weight");
        float[] c = tensor(model("garage-bAInd/Platypus2-13B"), "lm_head.weight");
        float[] merged = tensor(out, "lm_head.weight");
        for (int i = 0; i < merged.length; i++) {
            double expected = (a[i] + 0.3 * b[i] + 0.5 * c[i]) / 1.8;
            assertEquals(expected, merged[i], 1e-3 * Math.abs(expected) + 1e-6, "lm_head[" + i + "]");
        }
    }

    @Test
    void orcaminiPlaty44Layer() throws Exception {
        Path out = run("""
                slices:
                  - sources:
                    - model: psmathur/orca_mini_v3_13b
                      layer_range: [0, 24]
                  - sources:
                    - model: garage-bAInd/Platypus2-13B
                      layer_range: [20, 40]
                merge_method: passthrough
                dtype: float16
                """, "psmathur/orca_mini_v3_13b", "garage-bAInd/Platypus2-13B");
        assertTrue(Files.readString(out.resolve("config.json")).contains("\"num_hidden_layers\" : 44"));
        Path platypus = model("garage-bAInd/Platypus2-13B");
        assertArrayEquals(f16(tensor(platypus, "model.layers.20" + Q)), tensor(out, "model.layers.24" + Q));
        // as mergekit: lm_head and the final norm from the last slice's model, the embeddings from the first's
        assertArrayEquals(f16(tensor(platypus, "lm_head.weight")), tensor(out, "lm_head.weight"));
        assertArrayEquals(f16(tensor(model("psmathur/orca_mini_v3_13b"), "model.embed_tokens.weight")),
                tensor(out, "model.embed_tokens.weight"));
    }

    @Test
    void ties() throws Exception {
        Path out = run("""
                models:
                  - model: psmathur/orca_mini_v3_13b
                    parameters:
                      density: [1, 0.7, 0.1] # density gradient
                      weight: 1.0
                  - model: garage-bAInd/Platypus2-13B
                    parameters:
                      density: 0.5
                      weight: [0, 0.3, 0.7, 1] # weight gradient
                  - model: WizardLM/WizardMath-13B-V1.0
                    parameters:
                      density: 0.33
                      weight:
                        - filter: mlp
                          value: 0.5
                        - value: 0
                merge_method: ties
                base_model: TheBloke/Llama-2-13B-fp16
                parameters:
                  normalize: true
                  int8_mask: true
                dtype: float16
                """, "psmathur/orca_mini_v3_13b", "garage-bAInd/Platypus2-13B", "WizardLM/WizardMath-13B-V1.0",
                "TheBloke/Llama-2-13B-fp16");
        assertEquals(DType.F16, dtype(out, "model.layers.0" + Q));
    }
}
