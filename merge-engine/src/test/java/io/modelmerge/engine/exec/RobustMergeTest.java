package io.modelmerge.engine.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.testing.Fixtures;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * robustmerge on the real gpt2 adapters (a: c_attn r 8, scaling 1; b: c_attn and c_proj r 8, scaling 4), against
 * the authors' algorithm written here over whole stacked arrays [T, d1, d2] in double, as their code does it with
 * tensors (kthvalue, masks, sums over the last dimension, a sort for the clamp, sums over the adapters).
 */
class RobustMergeTest {
    private static final Path A = Fixtures.real("gpt2-lora-c_attn-r8-a");
    private static final Path B = Fixtures.real("gpt2-lora-b");
    private static final double KEEP = 0.2;
    private static final double ATT = 0.2;
    private static final double FUSE = 2.0;

    @TempDir
    Path dir;

    private static float[] read(Path adapter, String name) throws Exception {
        try (SafetensorsFile f = SafetensorsFile.open(adapter.resolve("adapter_model.safetensors"))) {
            return Floats.widen(f.tensor(name));
        }
    }

    /** stacked [T][d1*d2]: the entries at or above each adapter's k-th smallest magnitude (torch.kthvalue, 1-based). */
    private static double[][] trimmed(double[][] stacked) {
        double[][] out = new double[stacked.length][];
        for (int t = 0; t < stacked.length; t++) {
            int k = (int) (stacked[t].length * (1 - KEEP));
            double[] sorted = Arrays.stream(stacked[t]).map(Math::abs).sorted().toArray();
            double kth = sorted[k - 1];
            out[t] = Arrays.stream(stacked[t]).map(v -> Math.abs(v) >= kth ? v : 0).toArray();
        }
        return out;
    }

    @Test
    void itIsTheAuthorsAlgorithmOnTheRealGpt2Adapters() throws Exception {
        Path out = dir.resolve("robust");
        new MergeExecutor(MergeOptions.defaults().withThreads(2), p -> { }, new AtomicBoolean()).run(
                RecipeParser.parse("merge_method: robustmerge\nmodels:\n  - model: " + A + "\n  - model: " + B
                        + "\nparameters:\n  target_overlap: intersect\n"), out);
        double[] scaling = {8.0 / 8, 32.0 / 8};
        int rank = 8;
        for (int layer : new int[] {0, 5, 11}) {
            String m = "base_model.model.transformer.h." + layer + ".attn.c_attn.";
            double[][] a = new double[2][];
            double[][] b = new double[2][];
            Path[] adapters = {A, B};
            for (int t = 0; t < 2; t++) {
                float[] at = read(adapters[t], m + "lora_A.weight");
                float[] bt = read(adapters[t], m + "lora_B.weight");
                int tt = t;
                // the engine bakes each adapter's scaling into its A (the authors' adapters share one config)
                a[t] = new double[at.length];
                for (int i = 0; i < at.length; i++) {
                    a[t][i] = (float) (at[i] * (float) scaling[tt]);
                }
                b[t] = new double[bt.length];
                for (int i = 0; i < bt.length; i++) {
                    b[t][i] = bt[i];
                }
            }
            double[][] ta = trimmed(a);
            double[][] tb = trimmed(b);
            int in = a[0].length / rank;
            int outs = b[0].length / rank;
            // s_vector = sum |A| over the last dimension / sum |mask*A|, then clamp(min = sorted[int(r*(1-att))])
            double[][] scale = new double[2][rank];
            for (int t = 0; t < 2; t++) {
                for (int i = 0; i < rank; i++) {
                    double all = 0;
                    double kept = 0;
                    for (int j = 0; j < in; j++) {
                        all += Math.abs(a[t][i * in + j]);
                        kept += Math.abs(ta[t][i * in + j]);
                    }
                    scale[t][i] = all / kept;
                }
                double[] sorted = scale[t].clone();
                Arrays.sort(sorted);
                double min = sorted[(int) (rank * (1 - ATT))];
                for (int i = 0; i < rank; i++) {
                    scale[t][i] = Math.min(Math.max(scale[t][i], min), sorted[rank - 1]);
                }
            }
            float[] mergedA = read(out, m + "lora_A.weight");
            float[] mergedB = read(out, m + "lora_B.weight");
            for (int i = 0; i < ta[0].length; i++) {
                double want = FUSE * ta[0][i] + FUSE * ta[1][i];
                assertEquals(want, mergedA[i], 1e-6 * Math.max(1e-3, Math.abs(want)), m + "A[" + i + "]");
            }
            for (int o = 0; o < outs; o++) {
                for (int c = 0; c < rank; c++) {
                    double num = FUSE * scale[0][c] * tb[0][o * rank + c] + FUSE * scale[1][c] * tb[1][o * rank + c];
                    double want = num / (scale[0][c] + scale[1][c]);
                    assertEquals(want, mergedB[o * rank + c], 1e-6 * Math.max(1e-3, Math.abs(want)),
                            m + "B[" + o + ", " + c + "]");
                }
            }
        }
    }

    /**
     * A rank whose whole row of A falls below the k-th magnitude keeps nothing: the authors' code divides by the
     * zero sum of its kept magnitudes; here its scale is 1 before the clamp, and the merged factors are finite.
     */
    @Test
    void aRankPrunedWholeHasScaleOneAndTheMergeStaysFinite() {
        int rank = 4;
        int in = 5;
        float[] a = new float[rank * in];
        for (int i = 0; i < a.length; i++) {
            a[i] = i < in ? 1e-3f * (i + 1) : (float) Math.sin(i) + 2; // row 0 is far below every other row
        }
        float[] prunedA = RobustMerge.pruned(a, 0.5);
        for (int j = 0; j < in; j++) {
            assertEquals(0f, prunedA[j], "row 0 is pruned whole");
        }
        double[] raw = RobustMerge.scales(a, prunedA, rank, 1.0); // att_ratio 1: the clamp floor is the smallest
        assertEquals(1.0, raw[0], 0, "nothing kept, nothing to rescale");
        float[] b = new float[3 * rank];
        Arrays.fill(b, 0.5f);
        float[][] merged = RobustMerge.merge(new float[][] {a, a}, new float[][] {b, b}, rank, 0.5, 0.2, 2.0);
        for (float[] factor : merged) {
            for (float v : factor) {
                assertTrue(Float.isFinite(v), Arrays.toString(factor));
            }
        }
        assertEquals(2f * 0.5f, merged[1][0], 1e-6, "identical adapters: B's columns average to B, times fuse");
    }
}
