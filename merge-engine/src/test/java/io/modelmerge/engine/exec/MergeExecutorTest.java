package io.modelmerge.engine.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.blob.LocalBlobStore;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.checkpoint.CheckpointFormat;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.safetensors.SafetensorsWriter;
import io.modelmerge.storage.safetensors.Tensor;
import io.modelmerge.storage.safetensors.TensorInfo;
import io.modelmerge.storage.safetensors.TensorSpec;
import io.modelmerge.storage.testing.Fixtures;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MergeExecutorTest {
    @TempDir
    Path dir;

    private MergeResult merge(String yaml, Path out, MergeOptions options) throws Exception {
        return new MergeExecutor(options, p -> { }, new AtomicBoolean()).run(RecipeParser.parse(yaml), out);
    }

    private MergeResult merge(String yaml, Path out) throws Exception {
        return merge(yaml, out, MergeOptions.defaults().withThreads(2).withMemory(64L << 20).withSeed(7));
    }

    private static float[] floats(SafetensorsFile file, String name) {
        return io.modelmerge.engine.kernel.Floats.widen(file.tensor(name));
    }

    /** The tinygrad MNIST checkpoint merged with perturbed copies of itself, checked against scalar TIES. */
    @Test
    void mergesTheRealMnistCheckpointWithPerturbedCopiesOfItself() throws Exception {
        Path original = Fixtures.real("mnist-tinygrad-full").resolve("model.safetensors");
        List<Path> copies = new ArrayList<>();
        try (SafetensorsFile file = SafetensorsFile.open(original)) {
            for (int c = 0; c < 2; c++) {
                Random random = new Random(c);
                List<Tensor> tensors = new ArrayList<>();
                for (TensorInfo t : file.tensors()) {
                    float[] values = floats(file, t.name());
                    ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
                    for (float v : values) {
                        buffer.putFloat(v + (float) random.nextGaussian() * 0.01f);
                    }
                    tensors.add(new Tensor(t, MemorySegment.ofArray(buffer.array())));
                }
                Path copy = Files.createDirectories(dir.resolve("copy" + c)).resolve("model.safetensors");
                SafetensorsWriter.write(copy, tensors, Map.of());
                copies.add(copy);
            }
        }
        String yaml = """
                merge_method: ties
                base_model: %s
                models:
                  - model: %s
                    parameters: {weight: 0.7, density: 0.3}
                  - model: %s
                    parameters: {weight: 0.3, density: 0.6}
                dtype: float32
                """.formatted(original, copies.get(0), copies.get(1));
        Path out = dir.resolve("merged");
        MergeResult result = merge(yaml, out);
        assertEquals(2, result.tensors());
        Checkpoint merged = Checkpoint.open(new LocalBlobStore(out), "");
        assertEquals(CheckpointFormat.SAFETENSORS, merged.format());
        try (SafetensorsFile base = SafetensorsFile.open(original);
             SafetensorsFile a = SafetensorsFile.open(copies.get(0));
             SafetensorsFile b = SafetensorsFile.open(copies.get(1));
             SafetensorsFile o = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            for (TensorInfo t : base.tensors()) {
                double[] expected = ReferenceMerges.ties(floats(base, t.name()),
                        new float[][] {floats(a, t.name()), floats(b, t.name())}, new double[] {0.7, 0.3},
                        new double[] {0.3, 0.6});
                float[] actual = floats(o, t.name());
                for (int i = 0; i < actual.length; i++) {
                    assertEquals(expected[i], actual[i], 1e-5 + 1e-5 * Math.abs(expected[i]), t.name() + "[" + i + "]");
                }
            }
        }
        String card = Files.readString(out.resolve("README.md"));
        assertTrue(card.contains("base_model_relation: merge") && card.contains("- merge"), card);
        assertTrue(card.contains("- \"" + original + "\""), card);
        assertEquals(yaml, Files.readString(out.resolve("merge_recipe.yml")));
    }

    private Path llamaModel(String name, long seed, DType dtype) throws IOException {
        return SyntheticCheckpoints.write(dir.resolve(name), SyntheticCheckpoints.llama(4, 16, 32, 32, dtype),
                (tensor, i) -> TestNoise.of(0, tensor, i) + (seed == 0 ? 0 : 0.1 * TestNoise.of(seed, tensor, i)));
    }

    /**
     * mergekit's README SLERP example as is, but for the model names: t is a gradient per filter over the four
     * layers, so layer 0's attention is the base exactly, its MLP the other model exactly, and the rest blend.
     */
    @Test
    void runsMergekitsSlerpExampleWithPerFilterGradients() throws Exception {
        Path a = llamaModel("slerp-a", 0, DType.F32);
        Path b = llamaModel("slerp-b", 5, DType.F32);
        String yaml = """
                slices:
                  - sources:
                      - model: %1$s
                        layer_range: [0, 4]
                      - model: %2$s
                        layer_range: [0, 4]
                merge_method: slerp
                base_model: %1$s
                parameters:
                  t:
                    - filter: self_attn
                      value: [0, 0.5, 0.3, 0.7, 1]
                    - filter: mlp
                      value: [1, 0.5, 0.7, 0.3, 0]
                    - value: 0.5
                dtype: float32
                """.formatted(a, b);
        Path out = dir.resolve("slerp");
        merge(yaml, out);
        try (SafetensorsFile fa = SafetensorsFile.open(a.resolve("model.safetensors"));
             SafetensorsFile fb = SafetensorsFile.open(b.resolve("model.safetensors"));
             SafetensorsFile merged = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            String attention = "model.layers.0.self_attn.q_proj.weight";
            String mlp = "model.layers.0.mlp.up_proj.weight";
            org.junit.jupiter.api.Assertions.assertArrayEquals(floats(fa, attention), floats(merged, attention), 0f);
            org.junit.jupiter.api.Assertions.assertArrayEquals(floats(fb, mlp), floats(merged, mlp), 0f);
            // The final norm is outside the layers: t = 0.5, checked against the formula written out in ReferenceMerges.
            String norm = "model.norm.weight";
            float[] expected = ReferenceMerges.slerp(floats(fa, norm), floats(fb, norm), 0.5);
            org.junit.jupiter.api.Assertions.assertArrayEquals(expected, floats(merged, norm), 1e-6f);
        }
        String three = "merge_method: slerp\nbase_model: " + a + "\nmodels:\n  - model: " + a + "\n  - model: " + b
                + "\n  - model: " + llamaModel("slerp-c", 6, DType.F32) + "\nparameters: {t: 0.5}\n";
        RecipeException e = assertThrows(RecipeException.class, () -> merge(three, dir.resolve("slerp3")));
        assertTrue(e.getMessage().contains("slerp merges exactly one model besides the base_model"), e.getMessage());
    }

    /** mergekit's README TIES example as is, but for the model names; parameters resolve per layer. */
    @Test
    void runsMergekitsTiesExampleWithGradientsAndFilters() throws Exception {
        Path base = llamaModel("llama-base", 0, DType.F32);
        Path orca = llamaModel("orca", 1, DType.F32);
        Path platypus = llamaModel("platypus", 2, DType.F32);
        Path wizard = llamaModel("wizard", 3, DType.F32);
        String yaml = """
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
                dtype: float32
                """.replace("psmathur/orca_mini_v3_13b", orca.toString())
                .replace("garage-bAInd/Platypus2-13B", platypus.toString())
                .replace("WizardLM/WizardMath-13B-V1.0", wizard.toString())
                .replace("TheBloke/Llama-2-13B-fp16", base.toString());
        Path out = dir.resolve("ties-example");
        merge(yaml, out);
        try (SafetensorsFile b = SafetensorsFile.open(base.resolve("model.safetensors"));
             SafetensorsFile m1 = SafetensorsFile.open(orca.resolve("model.safetensors"));
             SafetensorsFile m2 = SafetensorsFile.open(platypus.resolve("model.safetensors"));
             SafetensorsFile m3 = SafetensorsFile.open(wizard.resolve("model.safetensors"));
             SafetensorsFile o = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            // 4 layers: t = layer / 3. Layer 3 (t = 1): density 0.1 / 0.5 / 0.33, weights 1 / 1 / (mlp 0.5, else 0).
            // Layer 1 (t = 1/3): density (1/3)·1 + (2/3)·0.7 = 0.8, platypus weight 0.3; embeddings: t = 0.
            record Case(String tensor, double[] weights, double[] density) {
            }
            List<Case> cases = List.of(
                    new Case("model.layers.3.mlp.up_proj.weight", new double[] {1, 1, 0.5}, new double[] {0.1, 0.5, 0.33}),
                    new Case("model.layers.3.self_attn.q_proj.weight", new double[] {1, 1, 0}, new double[] {0.1, 0.5, 0.33}),
                    new Case("model.layers.1.mlp.down_proj.weight", new double[] {1, 0.3, 0.5}, new double[] {0.8, 0.5, 0.33}),
                    new Case("model.embed_tokens.weight", new double[] {1, 0, 0}, new double[] {1, 0.5, 0.33}));
            for (Case c : cases) {
                double[] expected = ReferenceMerges.ties(floats(b, c.tensor()), new float[][] {floats(m1, c.tensor()),
                        floats(m2, c.tensor()), floats(m3, c.tensor())}, c.weights(), c.density());
                float[] actual = floats(o, c.tensor());
                for (int i = 0; i < actual.length; i++) {
                    assertEquals(expected[i], actual[i], 1e-5, c.tensor() + "[" + i + "]");
                }
            }
        }
    }

    @Test
    void runsMergekitsLinearExampleIntoShardsWithTheBaseFiles() throws Exception {
        Path a = llamaModel("orca", 1, DType.BF16);
        Path b = llamaModel("wizardlm", 2, DType.BF16);
        Path c = llamaModel("platypus", 3, DType.BF16);
        Files.writeString(a.resolve("tokenizer.json"), "{\"version\": \"1.0\"}");
        String yaml = """
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
                """.replace("psmathur/orca_mini_v3_13b", a.toString())
                .replace("WizardLM/WizardLM-13B-V1.2", b.toString())
                .replace("garage-bAInd/Platypus2-13B", c.toString());
        Path out = dir.resolve("linear-example");
        MergeResult result = merge(yaml, out, MergeOptions.defaults().withThreads(2).withMemory(64L << 20)
                .withOutShardSize(4096));
        assertTrue(result.files().size() > 3, result.files().toString());
        assertTrue(Files.exists(out.resolve("model.safetensors.index.json")));
        assertTrue(Files.exists(out.resolve("config.json")) && Files.exists(out.resolve("tokenizer.json")));
        Checkpoint merged = Checkpoint.open(new LocalBlobStore(out), "");
        assertEquals(CheckpointFormat.SHARDED, merged.format());
        assertEquals(Map.of(DType.F16, (long) merged.tensors().size()), merged.dtypeCounts());
        try (var mapped = merged.map(new io.modelmerge.storage.blob.BlobCache(dir.resolve("cache"), 1 << 20));
             SafetensorsFile fa = SafetensorsFile.open(a.resolve("model.safetensors"));
             SafetensorsFile fb = SafetensorsFile.open(b.resolve("model.safetensors"));
             SafetensorsFile fc = SafetensorsFile.open(c.resolve("model.safetensors"))) {
            String name = "model.layers.2.mlp.gate_proj.weight";
            float[] out16 = new float[512];
            io.modelmerge.engine.kernel.Floats.widen(mapped.tensor(name).data(), DType.F16, 0, out16, 512);
            float[] x = floats(fa, name);
            float[] y = floats(fb, name);
            float[] z = floats(fc, name);
            for (int i = 0; i < 512; i++) {
                float expected = (1.0f * x[i] + 0.3f * y[i] + 0.5f * z[i]) / 1.8f;
                assertEquals(Float.float16ToFloat(Float.floatToFloat16(expected)), out16[i], Math.ulp(expected) * 16, name + "[" + i + "]");
            }
        }
    }

    @Test
    void badRecipesFailBeforeAnyOutputWithAClearMessage() throws Exception {
        Path a = llamaModel("a", 1, DType.F32);
        Path b = llamaModel("b", 2, DType.F32);
        Path base = llamaModel("base", 0, DType.F32);
        Path small = SyntheticCheckpoints.write(dir.resolve("small"), SyntheticCheckpoints.llama(4, 8, 16, 32, DType.F32),
                (t, i) -> 0.5);
        Path fewer = SyntheticCheckpoints.write(dir.resolve("fewer"), SyntheticCheckpoints.llama(3, 16, 32, 32, DType.F32),
                (t, i) -> 0.5);
        String two = "models:\n  - model: " + a + "\n    parameters: {weight: %s%s}\n  - model: " + b
                + "\n    parameters: {weight: %s}\n";
        Map<String, String> cases = new java.util.LinkedHashMap<>();
        cases.put("merge_method: frankenstein\n" + two.formatted(1, "", 1), "unknown merge_method 'frankenstein'");
        cases.put("merge_method: linear\nmodelz: []\n" + two.formatted(1, "", 1), "unknown key 'modelz'");
        cases.put("merge_method: linear\nmodels:\n  - model: " + a + "\n  - model: " + b + "\n", "needs parameter 'weight'");
        cases.put("merge_method: linear\n" + two.formatted(1, "", -1), "weights sum to zero");
        cases.put("merge_method: ties\nbase_model: " + base + "\n" + two.formatted(1, ", density: 1.5", 1),
                "density 1.5 for tensor 'lm_head.weight' of model " + a + " is outside (0, 1]");
        cases.put("merge_method: breadcrumbs\nbase_model: " + base + "\n" + two.formatted(1, ", gamma: 1.0", 1),
                "gamma 1.0 for tensor 'lm_head.weight' of model " + a + " is outside [0, 1)");
        cases.put("merge_method: ties\n" + two.formatted(1, "", 1), "merge_method ties needs a base_model");
        cases.put("merge_method: linear\n" + two.formatted(1, "", 1).replace(b.toString(), small.toString()),
                "models do not line up: tensor 'lm_head.weight' has shape [32, 8] in " + small + " but [32, 16] in " + a);
        cases.put("merge_method: linear\n" + two.formatted(1, "", 1).replace(b.toString(), fewer.toString()),
                "models do not line up: tensor 'model.layers.3.input_layernorm.weight' (for "
                        + "'model.layers.3.input_layernorm.weight') is missing from " + fewer);
        cases.put("merge_method: linear\n" + two.formatted("[1, x]", "", 1), "must be a finite number, got 'x'");
        int n = 0;
        for (var c : cases.entrySet()) {
            Path out = dir.resolve("bad" + (n++));
            Exception e = assertThrows(Exception.class, () -> merge(c.getKey(), out), c.getValue());
            assertTrue(e instanceof RecipeException, e.toString());
            assertTrue(e.getMessage().contains(c.getValue()), "expected '" + c.getValue() + "' in: " + e.getMessage());
            // A service's up-front check refuses the same recipes with the same message.
            Exception checked = assertThrows(Exception.class, () -> new MergeExecutor(MergeOptions.defaults(), p -> { },
                    new AtomicBoolean()).validate(RecipeParser.parse(c.getKey())), c.getValue());
            assertEquals(e.getMessage(), checked.getMessage());
            assertFalse(Files.exists(out), "no output for a failed merge");
        }
        try (Stream<Path> left = Files.list(dir)) {
            assertTrue(left.noneMatch(p -> p.getFileName().toString().contains(".partial")), "no staging left");
        }
    }

    /**
     * mergekit ignores a parameter the method does not take; so does a merge by default, and says so in its notes
     * and model card. Strict, the merge and the up-front check refuse it.
     */
    @Test
    void parametersTheMethodDoesNotTakeAreIgnoredAndNotedOrRefusedWhenStrict() throws Exception {
        Path a = llamaModel("a", 1, DType.F32);
        Path b = llamaModel("b", 2, DType.F32);
        String yaml = "merge_method: linear\nmodels:\n  - model: " + a + "\n    parameters: {weight: 1, densty: 0.5}\n"
                + "  - model: " + b + "\n    parameters: {weight: 1}\nparameters: {lambda: 2}\n";
        Path out = dir.resolve("lenient");
        MergeResult result = merge(yaml, out);
        String densty = "parameter 'densty' in parameters of model " + a + " is not one merge_method linear takes";
        String lambda = "parameter 'lambda' in parameters is not one merge_method linear takes";
        assertTrue(result.notes().stream().anyMatch(n -> n.startsWith(densty)), result.notes().toString());
        assertTrue(result.notes().stream().anyMatch(n -> n.startsWith(lambda)), result.notes().toString());
        String card = Files.readString(out.resolve("README.md"));
        assertTrue(card.contains(densty) && card.contains(lambda), card);
        MergeOptions strict = MergeOptions.defaults().withThreads(2).withMemory(64L << 20).withStrict(true);
        RecipeException refused = assertThrows(RecipeException.class, () -> merge(yaml, dir.resolve("strict"), strict));
        assertTrue(refused.getMessage().contains("unknown parameter 'lambda' in parameters"), refused.getMessage());
        RecipeException checked = assertThrows(RecipeException.class, () -> new MergeExecutor(strict, p -> { },
                new AtomicBoolean()).validate(RecipeParser.parse(yaml)));
        assertEquals(refused.getMessage(), checked.getMessage());
        assertFalse(Files.exists(dir.resolve("strict")));
    }

    @Test
    void aCancelledMergeLeavesNothing() throws Exception {
        Path a = llamaModel("a", 1, DType.F32);
        Path b = llamaModel("b", 2, DType.F32);
        AtomicBoolean cancel = new AtomicBoolean();
        Path out = dir.resolve("cancelled");
        String yaml = "merge_method: linear\nmodels:\n  - model: " + a + "\n    parameters: {weight: 1}\n  - model: " + b
                + "\n    parameters: {weight: 1}\n";
        MergeExecutor executor = new MergeExecutor(MergeOptions.defaults().withThreads(2).withMemory(64L << 20),
                p -> cancel.set(true), cancel);
        cancel.set(true);
        assertThrows(java.util.concurrent.CancellationException.class, () -> executor.run(RecipeParser.parse(yaml), out));
        assertFalse(Files.exists(out));
        try (Stream<Path> left = Files.list(dir)) {
            assertTrue(left.noneMatch(p -> p.getFileName().toString().contains(".partial")));
        }
    }

    /**
     * Slices stack layers: [0, 2) of a, then layers merged from b [2, 4) and c [0, 2) with a weight gradient; the
     * embeddings come from the first slice and lm_head from the last, as in mergekit.
     */
    @Test
    void slicesStackAndMergeLayerRangesWithGradientsWithinTheSlice() throws Exception {
        Path a = llamaModel("a", 1, DType.F32);
        Path b = llamaModel("b", 2, DType.F32);
        Path c = llamaModel("c", 3, DType.F32);
        String yaml = """
                slices:
                  - sources:
                      - model: %s
                        layer_range: [0, 2]
                  - sources:
                      - model: %s
                        layer_range: [2, 4]
                        parameters: {weight: [1, 0]}
                      - model: %s
                        layer_range: [0, 2]
                merge_method: linear
                parameters:
                  weight: 1.0
                """.formatted(a, b, c);
        Path out = dir.resolve("sliced");
        MergeResult result = merge(yaml, out);
        assertEquals(SyntheticCheckpoints.llama(4, 16, 32, 32, DType.F32).size(), result.tensors());
        try (SafetensorsFile fa = SafetensorsFile.open(a.resolve("model.safetensors"));
             SafetensorsFile fb = SafetensorsFile.open(b.resolve("model.safetensors"));
             SafetensorsFile fc = SafetensorsFile.open(c.resolve("model.safetensors"));
             SafetensorsFile o = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            String q = ".self_attn.q_proj.weight";
            org.junit.jupiter.api.Assertions.assertArrayEquals(floats(fa, "model.layers.1" + q), floats(o, "model.layers.1" + q));
            org.junit.jupiter.api.Assertions.assertArrayEquals(floats(fa, "model.embed_tokens.weight"),
                    floats(o, "model.embed_tokens.weight"));
            // As mergekit: lm_head from the last slice's sources and parameters at t = 0: b (weight 1) and c (1).
            float[] bHead = floats(fb, "lm_head.weight");
            float[] cHead = floats(fc, "lm_head.weight");
            float[] head = floats(o, "lm_head.weight");
            for (int i = 0; i < head.length; i++) {
                assertEquals((bHead[i] + cHead[i]) / 2, head[i], 1e-6f);
            }
            float[] b2 = floats(fb, "model.layers.2" + q);
            float[] c0 = floats(fc, "model.layers.0" + q);
            float[] layer2 = floats(o, "model.layers.2" + q); // t = 0: weights 1 and 1
            for (int i = 0; i < layer2.length; i++) {
                assertEquals((b2[i] + c0[i]) / 2, layer2[i], 1e-6f);
            }
            // t = 1: b's weight is 0, so layer 3 is c's layer 1
            org.junit.jupiter.api.Assertions.assertArrayEquals(floats(fc, "model.layers.1" + q), floats(o, "model.layers.3" + q), 1e-7f);
        }
    }

    /** Passthrough stacks a's layers [0, 3) on b's [1, 4): six layers, o_proj scaled to zero, config updated. */
    @Test
    void passthroughSlicesStackLayersWithAScalePerFilter() throws Exception {
        Path a = llamaModel("pa", 1, DType.BF16);
        Path b = llamaModel("pb", 2, DType.BF16);
        Files.writeString(a.resolve("config.json"), "{\"model_type\": \"llama\", \"num_hidden_layers\": 4}");
        String yaml = """
                slices:
                  - sources:
                      - model: %s
                        layer_range: [0, 3]
                  - sources:
                      - model: %s
                        layer_range: [1, 4]
                merge_method: passthrough
                parameters:
                  scale:
                    - filter: o_proj
                      value: 0.0
                    - value: 1.0
                dtype: bfloat16
                """.formatted(a, b);
        Path out = dir.resolve("stacked");
        MergeResult result = merge(yaml, out);
        assertEquals(SyntheticCheckpoints.llama(6, 16, 32, 32, DType.BF16).size(), result.tensors());
        assertTrue(Files.readString(out.resolve("config.json")).contains("\"num_hidden_layers\" : 6"));
        try (SafetensorsFile fa = SafetensorsFile.open(a.resolve("model.safetensors"));
             SafetensorsFile fb = SafetensorsFile.open(b.resolve("model.safetensors"));
             SafetensorsFile o = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            String q = ".self_attn.q_proj.weight";
            for (int layer = 0; layer < 6; layer++) {
                SafetensorsFile from = layer < 3 ? fa : fb;
                int source = layer < 3 ? layer : layer - 2;
                assertEquals(from.tensor("model.layers." + source + q).data().asByteBuffer(),
                        o.tensor("model.layers." + layer + q).data().asByteBuffer(), "layer " + layer);
                for (float v : floats(o, "model.layers." + layer + ".self_attn.o_proj.weight")) {
                    assertEquals(0f, Math.abs(v));
                }
            }
            // as mergekit: the embeddings from the first slice's model, the final norm and lm_head from the last's
            assertEquals(fa.tensor("model.embed_tokens.weight").data().asByteBuffer(),
                    o.tensor("model.embed_tokens.weight").data().asByteBuffer());
            for (String after : List.of("model.norm.weight", "lm_head.weight")) {
                assertEquals(fb.tensor(after).data().asByteBuffer(), o.tensor(after).data().asByteBuffer(), after);
            }
        }
        String two = yaml.replace("merge_method: passthrough", "merge_method: passthrough\nbase_model: " + a)
                .replace("        layer_range: [1, 4]", "        layer_range: [1, 4]\n      - model: " + a + "\n        layer_range: [0, 3]");
        RecipeException e = assertThrows(RecipeException.class, () -> merge(two, dir.resolve("two")));
        assertTrue(e.getMessage().contains("exactly one model"), e.getMessage());
    }

    @Test
    void validationReadsHeadersOnlyAndRefsCanBeRewrittenToLocations(@TempDir Path serverDir, @TempDir Path cache)
            throws Exception {
        Path mnist = Fixtures.real("mnist-tinygrad-full").resolve("model.safetensors");
        try (var server = io.modelmerge.storage.testing.S3ProxyServer.start(serverDir, "hub");
             var store = io.modelmerge.storage.blob.S3BlobStore.open(java.net.URI.create("s3://hub/mnist/"), server.settings());
             var storage = io.modelmerge.storage.blob.StorageResolver.unconfined(server.settings())) {
            store.write("model.safetensors", Files.readAllBytes(mnist));
            Recipe recipe = RecipeParser.parse("merge_method: linear\nmodels:\n  - model: team/mnist@prod\n"
                    + "    parameters: {weight: 1}\n  - model: team/mnist@2\n    parameters: {weight: 1}\n");
            Recipe located = recipe.withLocations(Map.of("team/mnist@prod", "s3://hub/mnist/", "team/mnist@2", mnist.toString()));
            assertEquals(List.of("s3://hub/mnist/", mnist.toString()), located.modelRefs());
            assertEquals(recipe.yaml(), located.yaml());
            MergeOptions options = MergeOptions.defaults().withStorage(storage).withCache(cache, 1L << 30);
            assertEquals(2, new MergeExecutor(options, p -> { }, new AtomicBoolean()).validate(located));
            try (Stream<Path> cached = Files.list(cache)) {
                assertEquals(0, cached.count(), "validation downloads no tensor data");
            }
        }
    }

    @Test
    void readsModelsFromS3(@TempDir Path serverDir) throws Exception {
        Path mnist = Fixtures.real("mnist-tinygrad-full").resolve("model.safetensors");
        try (var server = io.modelmerge.storage.testing.S3ProxyServer.start(serverDir, "hub");
             var store = io.modelmerge.storage.blob.S3BlobStore.open(java.net.URI.create("s3://hub/mnist/"), server.settings());
             var storage = io.modelmerge.storage.blob.StorageResolver.unconfined(server.settings())) {
            store.write("model.safetensors", Files.readAllBytes(mnist));
            String yaml = "merge_method: linear\nmodels:\n  - model: s3://hub/mnist/\n    parameters: {weight: 1}\n"
                    + "  - model: " + mnist + "\n    parameters: {weight: 1}\n";
            Path out = dir.resolve("from-s3");
            merge(yaml, out, MergeOptions.defaults().withThreads(2).withMemory(64L << 20).withStorage(storage));
            try (SafetensorsFile original = SafetensorsFile.open(mnist);
                 SafetensorsFile merged = SafetensorsFile.open(out.resolve("model.safetensors"))) {
                for (TensorInfo t : original.tensors()) {
                    org.junit.jupiter.api.Assertions.assertArrayEquals(floats(original, t.name()), floats(merged, t.name()));
                }
            }
        }
    }

    /** Two perturbed MNIST copies whose noise differs by tensor: 0.01 on l1, 0.05 on l2. */
    private List<Path> perturbedMnist(Path original) throws IOException {
        List<Path> copies = new ArrayList<>();
        try (SafetensorsFile file = SafetensorsFile.open(original)) {
            for (int c = 0; c < 2; c++) {
                Random random = new Random(100 + c);
                List<Tensor> tensors = new ArrayList<>();
                for (TensorInfo t : file.tensors()) {
                    float scale = t.name().equals("l1.weight") ? 0.01f : 0.05f;
                    float[] values = floats(file, t.name());
                    ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
                    for (float v : values) {
                        buffer.putFloat(v + (float) random.nextGaussian() * scale);
                    }
                    tensors.add(new Tensor(t, MemorySegment.ofArray(buffer.array())));
                }
                Path copy = Files.createDirectories(dir.resolve("scaled" + c)).resolve("model.safetensors");
                SafetensorsWriter.write(copy, tensors, Map.of());
                copies.add(copy);
            }
        }
        return copies;
    }

    @Test
    void tiesTopKOverTheWholeModelUsesOneThresholdPerModel() throws Exception {
        Path original = Fixtures.real("mnist-tinygrad-full").resolve("model.safetensors");
        List<Path> copies = perturbedMnist(original);
        String yaml = """
                merge_method: ties
                base_model: %s
                models:
                  - model: %s
                    parameters: {weight: 1.0, density: 0.3}
                  - model: %s
                    parameters: {weight: 1.0, density: 0.3}
                parameters: {topk_scope: model}
                dtype: float32
                """.formatted(original, copies.get(0), copies.get(1));
        Path out = dir.resolve("whole-model");
        merge(yaml, out);
        try (SafetensorsFile base = SafetensorsFile.open(original);
             SafetensorsFile a = SafetensorsFile.open(copies.get(0));
             SafetensorsFile b = SafetensorsFile.open(copies.get(1));
             SafetensorsFile o = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            List<String> names = List.of("l1.weight", "l2.weight");
            List<float[]> bases = names.stream().map(n -> floats(base, n)).toList();
            double[] thresholds = {
                    ReferenceMerges.topKThreshold(bases, names.stream().map(n -> floats(a, n)).toList(), 0.3),
                    ReferenceMerges.topKThreshold(bases, names.stream().map(n -> floats(b, n)).toList(), 0.3)};
            int keptInL2 = 0;
            for (String name : names) {
                double[] expected = ReferenceMerges.tiesWithThresholds(floats(base, name),
                        new float[][] {floats(a, name), floats(b, name)}, new double[] {1, 1}, thresholds);
                float[] actual = floats(o, name);
                float[] original2 = floats(base, name);
                for (int i = 0; i < actual.length; i++) {
                    assertEquals(expected[i], actual[i], 1e-6, name + "[" + i + "]");
                    if (name.equals("l2.weight") && actual[i] != original2[i]) {
                        keptInL2++;
                    }
                }
            }
            // l2's larger deltas win most of each model's budget: far more than 30% of l2 survives.
            assertTrue(keptInL2 > 0.5 * 1280, "kept in l2: " + keptInL2);
        }
        String varying = yaml.replaceFirst("density: 0\\.3\\}", "density: [{filter: l2, value: 0.5}, {value: 0.3}]}");
        assertTrue(!varying.equals(yaml));
        RecipeException e = assertThrows(RecipeException.class, () -> merge(varying, dir.resolve("varying")));
        assertTrue(e.getMessage().contains("topk_scope: model needs one density per model"), e.getMessage());
    }

    @Test
    void theSmallestMemoryBudgetGivesTheSameModel() throws Exception {
        Path base = llamaModel("budget-base", 0, DType.BF16);
        Path a = llamaModel("budget-a", 1, DType.BF16);
        Path b = llamaModel("budget-b", 2, DType.BF16);
        String yaml = "merge_method: ties\nbase_model: " + base + "\nmodels:\n  - model: " + a
                + "\n    parameters: {weight: 1, density: 0.4}\n  - model: " + b + "\n    parameters: {weight: 0.5, density: 0.6}\n";
        Path small = dir.resolve("small-budget");
        Path large = dir.resolve("large-budget");
        merge(yaml, small, MergeOptions.defaults().withThreads(2).withMemory(16L << 20));
        merge(yaml, large, MergeOptions.defaults().withThreads(1).withMemory(1L << 30));
        org.junit.jupiter.api.Assertions.assertArrayEquals(Files.readAllBytes(large.resolve("model.safetensors")),
                Files.readAllBytes(small.resolve("model.safetensors")));
    }

    /** weight: 1e308 is infinite in F32: the merge fails naming the tensor and leaves nothing, unless allowed. */
    @Test
    void anOutputHoldingNanOrInfinityFailsNamingTheTensorUnlessTheRecipeAllowsIt() throws Exception {
        Path a = llamaModel("nan-a", 1, DType.BF16);
        Path b = llamaModel("nan-b", 2, DType.BF16);
        String yaml = "merge_method: linear\nmodels:\n  - model: " + a + "\n    parameters: {weight: 1e308}\n  - model: " + b
                + "\n    parameters: {weight: 1}\nparameters: {normalize: false}\n";
        Path out = dir.resolve("nan");
        RecipeException e = assertThrows(RecipeException.class, () -> merge(yaml, out));
        // Tensors merge in parallel: whichever overflowed first is named.
        assertTrue(e.getMessage().matches("tensor 'model\\.[a-z_.0-9]+' would hold (NaN|infinity) \\(element \\d+, .*"),
                e.getMessage());
        assertTrue(e.getMessage().contains("allow_nonfinite: true"), e.getMessage());
        assertFalse(Files.exists(out));
        try (Stream<Path> left = Files.list(dir)) {
            assertTrue(left.noneMatch(p -> p.getFileName().toString().contains(".partial")), "no staging left");
        }

        // Finite in F32 but past F16's largest value (65504): infinite once written as F16.
        String f16 = yaml.replace("1e308", "1e7") + "out_dtype: float16\n";
        RecipeException narrowed = assertThrows(RecipeException.class, () -> merge(f16, dir.resolve("f16")));
        assertTrue(narrowed.getMessage().contains("which is infinite as F16"), narrowed.getMessage());

        merge(yaml + "allow_nonfinite: true\n", out);
        try (SafetensorsFile file = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            float[] values = floats(file, "model.embed_tokens.weight");
            assertTrue(Float.isInfinite(values[1]) || Float.isNaN(values[1]));
        }
        assertThrows(RecipeException.class, () -> RecipeParser.parse(yaml + "allow_nonfinite: yes please\n"));
    }

    /** Under local roots (as the services run it) no input outside them is opened, and only layout files are copied. */
    @Test
    void underLocalRootsInputsOutsideThemAreRefusedAndStrayFilesAreNotCopied() throws Exception {
        Path root = Files.createDirectories(dir.resolve("root"));
        Path model = SyntheticCheckpoints.write(root.resolve("m"), SyntheticCheckpoints.llama(1, 16, 32, 32, DType.F32),
                (t, i) -> TestNoise.of(0, t, i));
        Files.writeString(model.resolve("notes.txt"), "private notes");
        Path outside = llamaModel("outside", 1, DType.F32);
        Files.createSymbolicLink(root.resolve("link"), outside);
        MergeOptions confined = MergeOptions.defaults().withThreads(2).withMemory(64L << 20)
                .withStorage(new io.modelmerge.storage.blob.StorageResolver(io.modelmerge.storage.blob.S3Settings.defaults(),
                        io.modelmerge.storage.blob.LocalRoots.only(List.of(root), "test.roots")));
        MergeExecutor executor = new MergeExecutor(confined, p -> { }, new AtomicBoolean());
        for (String input : List.of("/etc/", "/etc/shadow", outside.toString(), root.resolve("link").toString(),
                model + "+" + outside)) {
            String yaml = "merge_method: passthrough\nmodels:\n  - model: " + input + "\n";
            IOException e = assertThrows(io.modelmerge.storage.blob.OutsideRootsException.class,
                    () -> executor.validate(RecipeParser.parse(yaml)), input);
            assertTrue(e.getMessage().endsWith("(test.roots)"), e.getMessage());
            assertFalse(e.getMessage().contains("header"), e.getMessage());
        }
        Path out = dir.resolve("passed");
        MergeResult result = executor.run(RecipeParser.parse("merge_method: passthrough\nmodels:\n  - model: " + model
                + "\n"), out);
        assertFalse(Files.exists(out.resolve("notes.txt")));
        assertTrue(Files.exists(out.resolve("config.json")));
        assertTrue(result.notes().stream().anyMatch(n -> n.endsWith("were not copied: notes.txt")), result.notes().toString());
    }
}
