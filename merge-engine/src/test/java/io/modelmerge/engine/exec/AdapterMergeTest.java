package io.modelmerge.engine.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.storage.blob.LocalBlobStore;
import io.modelmerge.storage.checkpoint.AdapterConfig;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.checkpoint.CheckpointFormat;
import io.modelmerge.storage.checkpoint.LoraModule;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * cat and svd on the real gpt2 LoRA adapters: a (c_attn, r 8, alpha 8: scaling 1, plus a saved score head) and b
 * (c_attn and c_proj, r 8, alpha 32: scaling 4). They share the 12 c_attn modules.
 */
class AdapterMergeTest {
    private static final Path A = Fixtures.real("gpt2-lora-c_attn-r8-a");
    private static final Path B = Fixtures.real("gpt2-lora-b");

    @TempDir
    Path dir;

    private MergeResult merge(String yaml, Path out) throws Exception {
        return new MergeExecutor(MergeOptions.defaults().withThreads(2), p -> { }, new AtomicBoolean())
                .run(RecipeParser.parse(yaml), out);
    }

    private MergeResult mergeStrictly(String yaml, Path out) throws Exception {
        return new MergeExecutor(MergeOptions.defaults().withThreads(2).withStrict(true), p -> { }, new AtomicBoolean())
                .run(RecipeParser.parse(yaml), out);
    }

    private static String recipe(String method, String extra) {
        return "merge_method: " + method + "\nmodels:\n  - model: " + A + "\n    parameters: {weight: 1.0}\n  - model: " + B
                + "\n    parameters: {weight: 0.5}\nparameters:\n  target_overlap: intersect\n" + extra;
    }

    private static float[] floats(SafetensorsFile file, String name) {
        return Floats.widen(file.tensor(name));
    }

    /** B·A (times {@code factor}) in double, [out, in] row-major. */
    private static double[] product(float[] b, float[] a, int out, int rank, int in, double factor) {
        double[] p = new double[out * in];
        for (int o = 0; o < out; o++) {
            for (int k = 0; k < rank; k++) {
                double bk = b[o * rank + k] * factor;
                for (int i = 0; i < in; i++) {
                    p[o * in + i] += bk * a[k * in + i];
                }
            }
        }
        return p;
    }

    /** Σ wᵢ·sᵢ·BᵢAᵢ of c_attn in layer {@code layer}: weights 1 and 0.5, scalings 8/8 and 32/8. */
    private static double[] expectedDelta(SafetensorsFile a, SafetensorsFile b, int layer) {
        String m = "base_model.model.transformer.h." + layer + ".attn.c_attn.";
        double[] pa = product(floats(a, m + "lora_B.weight"), floats(a, m + "lora_A.weight"), 2304, 8, 768, 1.0 * 1.0);
        double[] pb = product(floats(b, m + "lora_B.weight"), floats(b, m + "lora_A.weight"), 2304, 8, 768, 0.5 * 4.0);
        for (int i = 0; i < pa.length; i++) {
            pa[i] += pb[i];
        }
        return pa;
    }

    private static Checkpoint open(Path adapter) throws Exception {
        return Checkpoint.open(new LocalBlobStore(adapter), "");
    }

    @Test
    void catIsExactAndLoadsAsAPeftAdapterOfRankSixteen() throws Exception {
        Path out = dir.resolve("cat");
        MergeResult result = merge(recipe("cat", ""), out);
        assertTrue(result.notes().stream().anyMatch(n -> n.contains("c_proj") && n.contains("intersect")), result.notes().toString());
        assertTrue(result.notes().stream().anyMatch(n -> n.contains("score.weight")), result.notes().toString());
        Checkpoint merged = open(out);
        assertEquals(CheckpointFormat.PEFT_ADAPTER, merged.format());
        AdapterConfig config = merged.adapterConfig().orElseThrow();
        assertEquals(16, config.r());
        assertEquals(16.0, config.loraAlpha());
        assertEquals(List.of("c_attn"), config.targetModules());
        assertEquals(Optional("gpt2"), config.baseModel());
        List<LoraModule> modules = merged.loraModules();
        assertEquals(12, modules.size());
        modules.forEach(m -> assertEquals(1.0, m.scaling()));
        try (SafetensorsFile a = SafetensorsFile.open(A.resolve("adapter_model.safetensors"));
             SafetensorsFile b = SafetensorsFile.open(B.resolve("adapter_model.safetensors"));
             SafetensorsFile o = SafetensorsFile.open(out.resolve("adapter_model.safetensors"))) {
            for (int layer : new int[] {0, 5, 11}) {
                String m = "base_model.model.transformer.h." + layer + ".attn.c_attn.";
                double[] expected = expectedDelta(a, b, layer);
                double[] actual = product(floats(o, m + "lora_B.weight"), floats(o, m + "lora_A.weight"), 2304, 16, 768, 1.0);
                double scale = java.util.Arrays.stream(expected).map(Math::abs).max().orElseThrow();
                for (int i = 0; i < expected.length; i++) {
                    assertEquals(expected[i], actual[i], 1e-6 * scale, "layer " + layer + " entry " + i);
                }
            }
        }
    }

    private static java.util.Optional<String> Optional(String value) {
        return java.util.Optional.of(value);
    }

    @Test
    void svdAtTheFullRankReproducesTheSumAndTruncatesOptimallyBelowIt() throws Exception {
        Path full = dir.resolve("svd16");
        Path half = dir.resolve("svd8");
        merge(recipe("svd", "  rank: 16\n"), full);
        merge(recipe("svd", ""), half); // default rank: the largest input rank, 8
        assertEquals(8, open(half).adapterConfig().orElseThrow().r());
        assertEquals(16, open(full).adapterConfig().orElseThrow().r());
        try (SafetensorsFile a = SafetensorsFile.open(A.resolve("adapter_model.safetensors"));
             SafetensorsFile b = SafetensorsFile.open(B.resolve("adapter_model.safetensors"));
             SafetensorsFile f = SafetensorsFile.open(full.resolve("adapter_model.safetensors"));
             SafetensorsFile h = SafetensorsFile.open(half.resolve("adapter_model.safetensors"))) {
            String m = "base_model.model.transformer.h.3.attn.c_attn.";
            double[] expected = expectedDelta(a, b, 3);
            double[] rank16 = product(floats(f, m + "lora_B.weight"), floats(f, m + "lora_A.weight"), 2304, 16, 768, 1.0);
            double[] rank8 = product(floats(h, m + "lora_B.weight"), floats(h, m + "lora_A.weight"), 2304, 8, 768, 1.0);
            double norm = frobenius(expected, new double[expected.length]);
            assertTrue(frobenius(expected, rank16) < 1e-5 * norm, "rank 16 error " + frobenius(expected, rank16));
            // Eckart–Young: the rank-8 SVD is at least as close as any other rank-8 matrix, e.g. b's term alone
            double[] bAlone = product(floats(b, m + "lora_B.weight"), floats(b, m + "lora_A.weight"), 2304, 8, 768, 2.0);
            double[] aAlone = product(floats(a, m + "lora_B.weight"), floats(a, m + "lora_A.weight"), 2304, 8, 768, 1.0);
            double error8 = frobenius(expected, rank8);
            assertTrue(error8 > 1e-3 * norm, "two rank-8 terms do not fit in rank 8 exactly");
            assertTrue(error8 <= frobenius(expected, bAlone) && error8 <= frobenius(expected, aAlone),
                    "rank 8 error " + error8 + " vs " + frobenius(expected, bAlone) + ", " + frobenius(expected, aAlone));
        }
    }

    private static double frobenius(double[] x, double[] y) {
        double s = 0;
        for (int i = 0; i < x.length; i++) {
            s += (x[i] - y[i]) * (x[i] - y[i]);
        }
        return Math.sqrt(s);
    }

    @Test
    void adaptersOfDifferentBasesOrModulesAreRefusedAndLeaveNothing() throws Exception {
        Path bert = Fixtures.real("bert-lora-query-value");
        Path distilbert = Fixtures.real("distilbert-lora-imdb");
        Path out = dir.resolve("refused");
        RecipeException gpt2AndBert = assertThrows(RecipeException.class, () -> merge(
                recipe("cat", "").replace(B.toString(), bert.toString()), out));
        assertTrue(gpt2AndBert.getMessage().contains("different base models") && gpt2AndBert.getMessage().contains("bert-base-uncased"),
                gpt2AndBert.getMessage());
        RecipeException berts = assertThrows(RecipeException.class, () -> merge(
                recipe("svd", "").replace(A.toString(), bert.toString()).replace(B.toString(), distilbert.toString()), out));
        assertTrue(berts.getMessage().contains("distilbert-base-uncased"), berts.getMessage());
        RecipeException partial = assertThrows(RecipeException.class, () -> merge(
                recipe("cat", "").replace("  target_overlap: intersect\n", "  target_overlap: refuse\n"), out));
        assertTrue(partial.getMessage().contains("target_overlap: intersect") && partial.getMessage().contains("c_proj"),
                partial.getMessage());
        assertThrows(RecipeException.class, () -> mergeStrictly(
                recipe("cat", "").replace("weight: 0.5", "weight: 0.5, density: 1"), out));
        RecipeException overlap = assertThrows(RecipeException.class, () -> merge(
                recipe("cat", "").replace("target_overlap: intersect", "target_overlap: union"), out));
        assertTrue(overlap.getMessage().contains("parameter 'target_overlap' is 'union'")
                && overlap.getMessage().contains("[refuse, intersect]"), overlap.getMessage());
        for (String rank : List.of("-2", "2.5")) {
            RecipeException e = assertThrows(RecipeException.class, () -> merge(recipe("svd", "  rank: " + rank + "\n"), out));
            assertTrue(e.getMessage().contains("parameter 'rank' must be"), e.getMessage());
        }
        RecipeException rankOfCat = assertThrows(RecipeException.class,
                () -> mergeStrictly(recipe("cat", "  rank: 4\n"), out));
        assertTrue(rankOfCat.getMessage().contains("unknown parameter 'rank'"), rankOfCat.getMessage());
        assertFalse(Files.exists(out));
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(List.of(), left.toList());
        }
        assertEquals(12, new MergeExecutor(MergeOptions.defaults(), p -> { }, new AtomicBoolean())
                .validate(RecipeParser.parse(recipe("svd", ""))));
    }
}
