package io.modelmerge.engine.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.blob.LocalBlobStore;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.safetensors.TensorSpec;
import io.modelmerge.storage.testing.Fixtures;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The two real GPT-2 LoRA adapters (PEFT, fan_in_fan_out) applied on the fly to a generated GPT-2-shaped base
 * (Conv1D weights stored [in, out], GPT-2's names), checked against W + scale·(B·A)ᵀ computed here with plain
 * loops, then merged with TIES.
 */
class LoraMergeTest {
    @TempDir
    static Path dir;
    static Path base;

    /** GPT-2's adapted weights: attn.c_attn [768, 2304], attn.c_proj [768, 768], mlp.c_proj [3072, 768]. */
    @BeforeAll
    static void writeGpt2ShapedBase() throws Exception {
        List<TensorSpec> specs = new ArrayList<>();
        for (int l = 0; l < 12; l++) {
            String p = "transformer.h." + l + ".";
            specs.add(new TensorSpec(p + "ln_1.weight", DType.F32, new long[] {768}));
            specs.add(new TensorSpec(p + "attn.c_attn.weight", DType.F32, new long[] {768, 2304}));
            specs.add(new TensorSpec(p + "attn.c_proj.weight", DType.F32, new long[] {768, 768}));
            specs.add(new TensorSpec(p + "mlp.c_proj.weight", DType.F32, new long[] {3072, 768}));
        }
        base = SyntheticCheckpoints.write(dir.resolve("gpt2-base"), specs,
                (tensor, i) -> ((tensor.hashCode() * 31 + (int) i) * 0x9E3779B1 >>> 8) / (double) (1 << 24) - 0.5);
    }


    /** W[in][out] + scale · Σ_r B[out][r] A[r][in], in doubles. */
    private static double[] applied(Path adapterDir, String module, double scale, float[] w, int in, int out)
            throws Exception {
        try (SafetensorsFile adapter = SafetensorsFile.open(adapterDir.resolve("adapter_model.safetensors"))) {
            float[] a = Floats.widen(adapter.tensor("base_model.model." + module + ".lora_A.weight"));
            float[] b = Floats.widen(adapter.tensor("base_model.model." + module + ".lora_B.weight"));
            int r = a.length / in;
            double[] result = new double[w.length];
            for (int i = 0; i < in; i++) {
                for (int o = 0; o < out; o++) {
                    double delta = 0;
                    for (int k = 0; k < r; k++) {
                        delta += (double) b[o * r + k] * a[k * in + i];
                    }
                    result[i * out + o] = w[i * out + o] + scale * delta;
                }
            }
            return result;
        }
    }

    private static MergeResult merge(String yaml, Path out) throws Exception {
        return new MergeExecutor(MergeOptions.defaults().withThreads(2).withMemory(256L << 20), p -> { },
                new AtomicBoolean()).run(RecipeParser.parse(yaml), out);
    }

    @Test
    void appliesEachAdapterAsWPlusScaledTransposedProduct() throws Exception {
        Path adapterA = Fixtures.real("gpt2-lora-c_attn-r8-a");
        Path adapterB = Fixtures.real("gpt2-lora-b");
        Path outA = dir.resolve("applied-a");
        MergeResult result = merge("merge_method: linear\nmodels:\n  - model: " + base + "+" + adapterA
                + "\n    parameters: {weight: 1.0}\n", outA);
        assertTrue(result.notes().stream().anyMatch(n -> n.contains("base_model.model.score.weight")), result.notes().toString());
        Path outB = dir.resolve("applied-b");
        merge("merge_method: linear\nmodels:\n  - model: " + base + "+" + adapterB + "\n    parameters: {weight: 1.0}\n", outB);
        try (SafetensorsFile w = SafetensorsFile.open(base.resolve("model.safetensors"));
             SafetensorsFile a = SafetensorsFile.open(outA.resolve("model.safetensors"));
             SafetensorsFile b = SafetensorsFile.open(outB.resolve("model.safetensors"))) {
            record Case(SafetensorsFile out, Path adapter, String module, double scale, int in, int outDim) {
            }
            // adapter a: alpha 8, r 8 -> scale 1; adapter b: alpha 32, r 8 -> scale 4
            for (Case c : List.of(new Case(a, adapterA, "transformer.h.0.attn.c_attn", 1.0, 768, 2304),
                    new Case(a, adapterA, "transformer.h.11.attn.c_attn", 1.0, 768, 2304),
                    new Case(b, adapterB, "transformer.h.5.attn.c_proj", 4.0, 768, 768),
                    new Case(b, adapterB, "transformer.h.7.mlp.c_proj", 4.0, 3072, 768))) {
                String weight = c.module() + ".weight";
                double[] expected = applied(c.adapter(), c.module(), c.scale(), Floats.widen(w.tensor(weight)), c.in(), c.outDim());
                float[] actual = Floats.widen(c.out().tensor(weight));
                double largestDelta = 0;
                float[] original = Floats.widen(w.tensor(weight));
                for (int i = 0; i < actual.length; i++) {
                    assertEquals(expected[i], actual[i], 1e-5, weight + "[" + i + "]");
                    largestDelta = Math.max(largestDelta, Math.abs(expected[i] - original[i]));
                }
                assertTrue(largestDelta > 1e-3, "the adapter changes " + weight + " (largest change " + largestDelta + ")");
            }
            // Modules the adapter does not target stay as they were.
            assertEquals(-1, w.tensor("transformer.h.3.attn.c_proj.weight").data()
                    .mismatch(a.tensor("transformer.h.3.attn.c_proj.weight").data()));
        }
    }

    @Test
    void mergesTheTwoAdaptedModelsWithTies() throws Exception {
        Path adapterA = Fixtures.real("gpt2-lora-c_attn-r8-a");
        Path adapterB = Fixtures.real("gpt2-lora-b");
        String yaml = """
                merge_method: ties
                base_model: %s
                models:
                  - model: %s+%s
                    parameters: {weight: 1.0, density: 0.5}
                  - model: %s+%s
                    parameters: {weight: 0.5, density: 0.5}
                """.formatted(base, base, adapterA, base, adapterB);
        Path out = dir.resolve("ties-of-adapters");
        merge(yaml, out);
        Checkpoint merged = Checkpoint.open(new LocalBlobStore(out), "");
        assertEquals(48, merged.tensors().size());
        String weight = "transformer.h.2.attn.c_attn.weight";
        try (SafetensorsFile w = SafetensorsFile.open(base.resolve("model.safetensors"));
             SafetensorsFile o = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            float[] baseValues = Floats.widen(w.tensor(weight));
            double[] a = applied(adapterA, "transformer.h.2.attn.c_attn", 1.0, baseValues, 768, 2304);
            double[] b = applied(adapterB, "transformer.h.2.attn.c_attn", 4.0, baseValues, 768, 2304);
            float[] fa = new float[a.length];
            float[] fb = new float[b.length];
            for (int i = 0; i < a.length; i++) {
                fa[i] = (float) a[i];
                fb[i] = (float) b[i];
            }
            double[] expected = ReferenceMerges.ties(baseValues, new float[][] {fa, fb}, new double[] {1.0, 0.5},
                    new double[] {0.5, 0.5});
            float[] actual = Floats.widen(o.tensor(weight));
            int differing = 0;
            for (int i = 0; i < actual.length; i++) {
                if (Math.abs(expected[i] - actual[i]) > 1e-5) {
                    differing++;
                }
            }
            // The adapted weights differ from the reference's only by float rounding of the gemm, which can move
            // an entry across the top-k threshold; allow a handful of such entries out of 1.77 million.
            assertTrue(differing < 50, differing + " entries differ");
        }
    }
}
