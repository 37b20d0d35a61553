package io.modelmerge.engine.method;

import static io.modelmerge.engine.method.MethodHarness.merge;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** nearswap, ram, ramplus_tl and arcee_fusion: hand-computed cases, and arcee_fusion against a sort-based port. */
class NearSwapRamFusionTest {
    private static final float EPS = 1e-6f;

    private static List<Map<String, Object>> none(int models) {
        List<Map<String, Object>> list = new ArrayList<>();
        for (int m = 0; m < models; m++) {
            list.add(Map.of());
        }
        return list;
    }

    @Test
    void nearswapTakesTheOtherValueWhereItIsNearAndStaysNearTheBaseWhereItIsFar() {
        float[] base = {1, 1, 1, 1};
        float[] other = {1, 1.0005f, 1.1f, 0.9f};
        // |a − b| = 0 (w = 1), 0.0005 (t/d = 2, clamped to 1), 0.1 and 0.1 (w = 0.01)
        float[] out = merge(new NearSwapMerge(), base, new float[][] {other}, none(1), Map.of("t", 0.001));
        assertArrayEquals(new float[] {1f, 1.0005f, 0.01f * 1.1f + 0.99f, 0.01f * 0.9f + 0.99f}, out, EPS);
    }

    @Test
    void nearswapRefusesANonPositiveThresholdAndMoreThanOneModel() {
        NearSwapMerge method = new NearSwapMerge();
        RecipeException zero = assertThrows(RecipeException.class, () -> method.check(new TensorParameters("w", 4,
                none(1), Map.of("t", 0.0), 1)));
        assertTrue(zero.getMessage().contains("must be positive"), zero.getMessage());
        RecipeException two = assertThrows(RecipeException.class, () -> method.checkModelCount(
                new TensorParameters("w", 4, none(2), Map.of("t", 0.1), 1)));
        assertTrue(two.getMessage().contains("exactly one model besides the base_model"), two.getMessage());
    }

    // Task vectors over a zero base: element 0 and 4 changed by model 1 alone, 1 by models 1 and 2, 2 by none,
    // 3 by all three.
    private static final float[] ZERO = new float[5];
    private static final float[][] TAU = {
        {0.5f, 0.2f, 0f, 0.3f, 0.4f},
        {0f, 0.4f, 0f, -0.3f, 0f},
        {0f, 0f, 0f, 0.6f, 0f},
    };

    @Test
    void ramTakesAloneChangedEntriesWholeAndAveragesSharedOnes() {
        // [0.5, (0.2 + 0.4)/2, 0, (0.3 − 0.3 + 0.6)/3, 0.4]
        float[] out = merge(new RamMerge(false), ZERO, TAU, none(3), Map.of(), 7, 2, 2);
        assertArrayEquals(new float[] {0.5f, 0.3f, 0f, 0.2f, 0.4f}, out, EPS);
    }

    @Test
    void ramplusScalesEachModelsUniqueEntriesByItsSharedToUniqueRatio() {
        // model 1: 2 shared, 2 unique entries: ρ = 1, λ = 1 + 0.5·min(1, 2) = 1.5 on elements 0 and 4.
        // models 2 and 3 have no unique entry: their λ (capped) touches nothing.
        float[] out = merge(new RamMerge(true), ZERO, TAU, none(3), Map.of("r", 0.5, "alpha", 2.0), 7, 2, 2);
        assertArrayEquals(new float[] {0.75f, 0.3f, 0f, 0.2f, 0.6f}, out, EPS);
        // α caps ρ: with α = 0.4, λ = 1.2
        float[] capped = merge(new RamMerge(true), ZERO, TAU, none(3), Map.of("r", 0.5, "alpha", 0.4), 7, 2, 2);
        assertArrayEquals(new float[] {0.6f, 0.3f, 0f, 0.2f, 0.48f}, capped, EPS);
    }

    @Test
    void ramIgnoresChangesWithinEpsilon() {
        // epsilon 0.35: model 1 contributes at 0 and 4 (alone), model 2 at 1 (alone), model 3 at 3 (alone)
        float[] out = merge(new RamMerge(false), ZERO, TAU, none(3), Map.of("epsilon", 0.35), 7, 2, 2);
        assertArrayEquals(new float[] {0.5f, 0.4f, 0f, 0.6f, 0.4f}, out, EPS);
    }

    @Test
    void arceeFusionKeepsOnlyChangesAboveMedianPlusOneAndAHalfIqr() {
        // One row: the KL factor is one constant, so the quartiles of |Δ|·kl at ⌊q·4⌋ = 1, 2, 3 are kl·0.1, kl·0.2,
        // kl·0.3 and the bar kl·(0.2 + 1.5·0.2) = kl·0.5: only the change of 5 reaches it.
        float[] base = {0, 0, 0, 0, 0};
        float[] model = {0, 0.1f, -0.2f, 0.3f, 5f};
        float[] out = merge(new ArceeFusionMerge(), base, new float[][] {model}, none(1), Map.of(), 7, 8, 1, 5);
        assertArrayEquals(new float[] {0, 0, 0, 0, 5f}, out, 0f);
    }

    /** mergekit's algorithm over the whole tensor at once, quartiles by sorting (exact below a million elements). */
    private static float[] arceeFusionBySorting(float[] base, float[] model, int columns) {
        int n = base.length;
        float[] importance = new float[n];
        for (int row = 0; row < n; row += columns) {
            double[] p = softmaxPlusEpsilon(model, row, columns);
            double[] q = softmaxPlusEpsilon(base, row, columns);
            double kl = 0;
            for (int i = 0; i < columns; i++) {
                kl += p[i] * Math.log(p[i] / q[i]);
            }
            for (int i = row; i < row + columns; i++) {
                importance[i] = (float) (Math.abs(model[i] - base[i]) * kl);
            }
        }
        float[] sorted = importance.clone();
        Arrays.sort(sorted);
        float q1 = sorted[(int) (0.25 * (n - 1))];
        float median = sorted[(int) (0.5 * (n - 1))];
        float q3 = sorted[(int) (0.75 * (n - 1))];
        float threshold = median + 1.5f * (q3 - q1);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = base[i] + (model[i] - base[i]) * (importance[i] >= threshold ? 1f : 0f);
        }
        return out;
    }

    private static double[] softmaxPlusEpsilon(float[] x, int row, int columns) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = row; i < row + columns; i++) {
            max = Math.max(max, x[i]);
        }
        double sum = 0;
        for (int i = row; i < row + columns; i++) {
            sum += Math.exp(x[i] - max);
        }
        double[] p = new double[columns];
        for (int i = 0; i < columns; i++) {
            p[i] = Math.exp(x[row + i] - max) / sum + 1e-8;
        }
        return p;
    }

    @Test
    void arceeFusionSelectsTheQuartilesTheSortedTensorHas() {
        Random random = new Random(3);
        for (int columns : new int[] {1, 33, 257}) {
            int rows = 7;
            float[] base = new float[rows * columns];
            float[] model = new float[rows * columns];
            for (int i = 0; i < base.length; i++) {
                base[i] = (float) random.nextGaussian();
                // coarse steps make many equal importances, as BF16 checkpoints do
                model[i] = base[i] + Math.round(random.nextGaussian() * 8) / 64f;
            }
            float[] expected = arceeFusionBySorting(base, model, columns);
            for (int block : new int[] {columns, 3 * columns, base.length}) {
                float[] out = merge(new ArceeFusionMerge(), base, new float[][] {model}, none(1), Map.of(), 7, block, 3,
                        columns);
                assertArrayEquals(expected, out, 0f, columns + " columns, blocks of " + block);
            }
            if (columns > 1) { // a one-element row has no divergence: every importance is 0 and every change kept
                long kept = 0;
                for (int i = 0; i < base.length; i++) {
                    kept += expected[i] != base[i] ? 1 : 0;
                }
                assertTrue(kept > 0 && kept < base.length / 2, kept + " changes kept of " + base.length);
            }
        }
    }
}
