package io.modelmerge.engine.exec;

import static io.modelmerge.engine.exec.StoredTensors.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.safetensors.DType;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Where mergekit's planner decides which inputs and parameters a tensor gets (mergekit/plan.py and
 * config.py's evaluate_setting), ours decides the same: each case is worked out from mergekit's rules on small
 * Llama-shaped models, with linear merges whose answer is a plain weighted mean.
 */
class MergekitPlannerParityTest {
    private static final String Q = ".self_attn.q_proj.weight";

    @TempDir
    Path dir;
    private int outputs;

    private Path model(String name, long seed) throws IOException {
        return SyntheticCheckpoints.write(dir.resolve(name), SyntheticCheckpoints.llama(4, 16, 32, 32, DType.F32),
                (tensor, i) -> TestNoise.of(seed, tensor, i));
    }

    private Path merge(String yaml) throws Exception {
        Path out = dir.resolve("out-" + outputs++);
        new MergeExecutor(MergeOptions.defaults().withThreads(2).withMemory(64L << 20), p -> { }, new AtomicBoolean())
                .run(RecipeParser.parse(yaml), out);
        return out;
    }

    /** Σ wᵢxᵢ / Σ wᵢ, element by element, in double rounded once (our linear's F32 result within 1 ulp or so). */
    private static float[] mean(float[][] x, double[] w) {
        float[] out = new float[x[0].length];
        double total = 0;
        for (double wi : w) {
            total += wi;
        }
        for (int i = 0; i < out.length; i++) {
            double s = 0;
            for (int m = 0; m < x.length; m++) {
                s += w[m] * x[m][i];
            }
            out[i] = (float) (s / total);
        }
        return out;
    }

    @Test
    void aGradientOverASingleLayerTakesItsLastValue() throws Exception {
        Path a = model("a", 1);
        Path b = model("b", 2);
        // one-layer slice: mergekit's t is 1 there, so a's weight is 3 (the gradient's end), not 1 (its start)
        Path out = merge("""
                slices:
                  - sources:
                      - model: %s
                        layer_range: [2, 3]
                        parameters: {weight: [1, 3]}
                      - model: %s
                        layer_range: [2, 3]
                        parameters: {weight: 1}
                merge_method: linear
                """.formatted(a, b));
        String name = "model.layers.2" + Q;
        float[] expected = mean(new float[][] {tensor(a, name), tensor(b, name)}, new double[] {3, 1});
        assertArrayEquals(expected, tensor(out, "model.layers.0" + Q), 1e-6f);
    }

    @Test
    void aModelsParameterFiltersMatchItsInputTensorNameNotTheOutputs() throws Exception {
        Path a = model("a", 1);
        Path b = model("b", 2);
        // a's layers 2 and 3 land at output layers 0 and 1; its filter names its own layer 2
        Path out = merge("""
                slices:
                  - sources:
                      - model: %s
                        layer_range: [2, 4]
                        parameters:
                          weight:
                            - filter: layers.2.
                              value: 0
                            - value: 1
                      - model: %s
                        layer_range: [0, 2]
                merge_method: linear
                parameters: {weight: 1}
                """.formatted(a, b));
        assertArrayEquals(tensor(b, "model.layers.0" + Q), tensor(out, "model.layers.0" + Q), 1e-6f);
        float[] layer1 = mean(new float[][] {tensor(a, "model.layers.3" + Q), tensor(b, "model.layers.1" + Q)},
                new double[] {1, 1});
        assertArrayEquals(layer1, tensor(out, "model.layers.1" + Q), 1e-6f);
    }

    @Test
    void aStarFilterMatchesEveryTensorAndAListOfWordsStepsOverTheLayers() throws Exception {
        Path a = model("a", 1);
        Path b = model("b", 2);
        Path out = merge("""
                models:
                  - model: %s
                    parameters:
                      weight:
                        - filter: "*"
                          value: 2
                  - model: %s
                    parameters: {weight: 1}
                merge_method: linear
                parameters:
                  normalize: [true, true, false, false]
                """.formatted(a, b));
        // layers 0 and 1 (t = 0, 1/3): normalized, (2a + b) / 3; layers 2 and 3 (t = 2/3, 1): not, 2a + b
        for (int layer = 0; layer < 4; layer++) {
            String name = "model.layers." + layer + Q;
            float[] x = tensor(a, name);
            float[] y = tensor(b, name);
            float[] expected = mean(new float[][] {x, y}, new double[] {2, 1});
            if (layer >= 2) {
                for (int i = 0; i < expected.length; i++) {
                    expected[i] = 2 * x[i] + y[i];
                }
            }
            assertArrayEquals(expected, tensor(out, name), 2e-6f, name);
        }
        float[] head = mean(new float[][] {tensor(a, "lm_head.weight"), tensor(b, "lm_head.weight")}, new double[] {2, 1});
        assertArrayEquals(head, tensor(out, "lm_head.weight"), 1e-6f);
    }

    @Test
    void embeddingsComeFromTheFirstSliceAndTheFinalNormAndHeadFromTheLast() throws Exception {
        Path a = model("a", 1);
        Path b = model("b", 2);
        Path c = model("c", 3);
        Path out = merge("""
                slices:
                  - sources:
                      - model: %s
                        layer_range: [0, 2]
                  - sources:
                      - model: %s
                        layer_range: [2, 4]
                      - model: %s
                        layer_range: [2, 4]
                    parameters: {weight: [0.25, 1]}
                merge_method: linear
                parameters: {weight: 1, normalize: false}
                """.formatted(a, b, c));
        assertArrayEquals(tensor(a, "model.embed_tokens.weight"), tensor(out, "model.embed_tokens.weight"));
        // after the layers: the last slice's sources b and c, its parameters at t = 0 (weight 0.25 each)
        for (String name : new String[] {"model.norm.weight", "lm_head.weight"}) {
            float[] x = tensor(b, name);
            float[] y = tensor(c, name);
            float[] merged = tensor(out, name);
            for (int i = 0; i < merged.length; i++) {
                assertEquals(0.25 * x[i] + 0.25 * y[i], merged[i], 1e-6, name);
            }
        }
    }

    @Test
    void torchDtypeSpellingsAndMultislerpsEpsAreAcceptedAndUnsupportedKeysRefusedByName() throws Exception {
        assertEquals(DType.F16, RecipeParser.dtype("torch.float16"));
        assertEquals(DType.BF16, RecipeParser.dtype("torch.bfloat16"));
        Path a = model("a", 1);
        Path b = model("b", 2);
        Path out = merge("""
                models:
                  - model: %s
                    parameters: {weight: 1}
                  - model: %s
                    parameters: {weight: 1}
                merge_method: multislerp
                parameters: {eps: 0.000001}
                dtype: torch.float32
                """.formatted(a, b));
        assertEquals(tensor(a, "lm_head.weight").length, tensor(out, "lm_head.weight").length);
        String modules = "modules:\n  text_decoder:\n    models: []\nmerge_method: linear\n";
        RecipeException e = assertThrows(RecipeException.class, () -> RecipeParser.parse(modules));
        assertTrue(e.getMessage().startsWith("'modules': per-module merges"), e.getMessage());
        String residual = "slices:\n  - sources:\n      - model: " + a + "\n        layer_range: [0, 2]\n"
                + "    residual_weight: 0.5\nmerge_method: passthrough\n";
        e = assertThrows(RecipeException.class, () -> RecipeParser.parse(residual));
        assertTrue(e.getMessage().startsWith("'residual_weight': a slice's residual_weight"), e.getMessage());
    }

    @Test
    void aBaseNamedButNotListedIsOneMoreInputForMethodsThatDoNotSubtractIt() throws Exception {
        Path a = model("a", 1);
        Path b = model("b", 2);
        Path c = model("c", 3);
        // mergekit's plan appends the base to the models; karcher then weighs all three alike
        Path named = merge("merge_method: karcher\nbase_model: %s\nmodels:\n  - model: %s\n  - model: %s\n"
                .formatted(c, a, b));
        Path listed = merge("merge_method: karcher\nmodels:\n  - model: %s\n  - model: %s\n  - model: %s\n"
                .formatted(a, b, c));
        for (String name : new String[] {"model.layers.1" + Q, "lm_head.weight"}) {
            assertArrayEquals(tensor(listed, name), tensor(named, name), name);
        }
        Path linear = merge("merge_method: linear\nbase_model: %s\nmodels:\n  - model: %s\n  - model: %s\n"
                .formatted(c, a, b) + "parameters: {weight: 1}\n");
        String name = "model.layers.3" + Q;
        assertArrayEquals(mean(new float[][] {tensor(a, name), tensor(b, name), tensor(c, name)}, new double[] {1, 1, 1}),
                tensor(linear, name), 1e-6f);
    }

    @Test
    void tokenizerSourceTakesThatModelsTokenizerFilesAndRefusesWhatItCannotDo() throws Exception {
        Path a = model("a", 1);
        Path b = model("b", 2);
        java.nio.file.Files.writeString(a.resolve("tokenizer.json"), "{\"vocab\": [\"x\", \"y\"]}");
        java.nio.file.Files.writeString(b.resolve("tokenizer.json"), "{\"vocab\": [\"x\", \"y\"]}");
        java.nio.file.Files.writeString(a.resolve("tokenizer_config.json"), "{\"from\": \"a\"}");
        java.nio.file.Files.writeString(b.resolve("tokenizer_config.json"), "{\"from\": \"b\"}");
        String recipe = "merge_method: linear\nbase_model: %s\nmodels:\n  - model: %s\n  - model: %s\n"
                .formatted(a, a, b) + "parameters: {weight: 1}\n";
        Path first = merge(recipe);
        assertEquals("{\"from\": \"a\"}", java.nio.file.Files.readString(first.resolve("tokenizer_config.json")));
        Path fromB = merge(recipe + "tokenizer_source: " + b + "\n");
        assertEquals("{\"from\": \"b\"}", java.nio.file.Files.readString(fromB.resolve("tokenizer_config.json")));
        Path fromBase = merge(recipe + "tokenizer_source: base\n");
        assertEquals("{\"from\": \"a\"}", java.nio.file.Files.readString(fromBase.resolve("tokenizer_config.json")));
        java.nio.file.Files.writeString(b.resolve("tokenizer.json"), "{\"vocab\": [\"y\", \"x\"]}");
        RecipeException differs = assertThrows(RecipeException.class, () -> merge(recipe + "tokenizer_source: " + b + "\n"));
        assertTrue(differs.getMessage().contains("has a different tokenizer.json"), differs.getMessage());
        for (String refused : new String[] {"tokenizer_source: union\n", "tokenizer:\n  source: union\n"}) {
            RecipeException e = assertThrows(RecipeException.class, () -> RecipeParser.parse(recipe + refused));
            assertTrue(e.getMessage().contains("not supported yet"), e.getMessage());
        }
    }

    @Test
    void chatTemplateIsSetByNameByPluralityOrAsWrittenInTheTokenizerTheOutputCarries() throws Exception {
        Path a = model("a", 1);
        Path b = model("b", 2);
        Path c = model("c", 3);
        String x = "{% for m in messages %}X{{ m['content'] }}{% endfor %}";
        String y = "{% for m in messages %}Y{{ m['content'] }}{% endfor %}";
        java.nio.file.Files.writeString(a.resolve("tokenizer_config.json"),
                "{\"model_max_length\": 2048, \"chat_template\": \"" + x + "\"}");
        java.nio.file.Files.writeString(b.resolve("chat_template.jinja"), y + "\n");
        java.nio.file.Files.writeString(c.resolve("tokenizer_config.json"),
                "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"default\", \"template\": \""
                        + y + "\"}]}");
        String recipe = "merge_method: linear\nmodels:\n  - model: %s\n  - model: %s\n  - model: %s\n".formatted(a, b, c)
                + "parameters: {weight: 1}\n";
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();

        // auto: b and c carry y (one as a file, one as the default of a list), a carries x: y wins
        com.fasterxml.jackson.databind.JsonNode auto = json.readTree(merge(recipe + "chat_template: auto\n")
                .resolve("tokenizer_config.json").toFile());
        assertEquals(y, auto.get("chat_template").asText());
        assertEquals(2048, auto.get("model_max_length").asInt(), "the rest of the config is kept");

        String chatml = json.readTree(merge(recipe + "chat_template: chatml\n").resolve("tokenizer_config.json")
                .toFile()).get("chat_template").asText();
        assertTrue(chatml.startsWith("{% for message in messages %}{{ '<|im_start|>' + message['role']"), chatml);

        String written = "\"{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}\"";
        assertEquals("{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}",
                json.readTree(merge(recipe + "chat_template: " + written + "\n").resolve("tokenizer_config.json")
                        .toFile()).get("chat_template").asText());

        // an output whose tokenizer keeps its template in chat_template.jinja gets it there
        Path fromB = merge(recipe + "tokenizer_source: " + b + "\nchat_template: llama3\n");
        assertTrue(java.nio.file.Files.readString(fromB.resolve("chat_template.jinja")).contains("<|start_header_id|>"));

        RecipeException invalid = assertThrows(RecipeException.class, () -> merge(recipe + "chat_template: chatm\n"));
        assertEquals("chat_template 'chatm' is neither auto, one of [alpaca, chatml, llama3, mistral] nor a Jinja template",
                invalid.getMessage());
        Path bare = model("bare", 4);
        MergeResult none = new MergeExecutor(MergeOptions.defaults().withThreads(2), p -> { }, new AtomicBoolean())
                .run(RecipeParser.parse("merge_method: linear\nmodels:\n  - model: %s\n  - model: %s\n".formatted(bare, c)
                        + "parameters: {weight: 1}\nchat_template: chatml\n"), dir.resolve("bare-out"));
        assertTrue(none.notes().contains("chat_template was given but the output has no tokenizer files; no template"
                + " was written"), none.notes().toString());
    }
}
