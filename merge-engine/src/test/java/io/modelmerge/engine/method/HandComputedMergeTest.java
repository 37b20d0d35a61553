package io.modelmerge.engine.method;

import static io.modelmerge.engine.method.MethodHarness.merge;
import static io.modelmerge.engine.method.MethodHarness.plus;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.modelmerge.engine.kernel.RandomMask;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Three models, six entries, values chosen so each rule matters: trimming (density 0.5 keeps 3 of 6 per
 * model), sign conflicts (entry 0: +0.5, +0.4 against −0.9), a zero vote (entry 0 sums to 0.0 with equal
 * weights: zero elects +), zero deltas, and unequal weights. Expected values are worked out by hand in the
 * comments.
 */
class HandComputedMergeTest {
    private static final float EPS = 1e-6f;
    private static final float[] BASE = {1, 1, 1, 1, 1, 1};
    private static final float[] D1 = {0.5f, -0.2f, 0.1f, 0.0f, 0.3f, -0.4f};
    private static final float[] D2 = {0.4f, 0.3f, -0.2f, 0.1f, 0.0f, -0.1f};
    private static final float[] D3 = {-0.9f, 0.2f, 0.3f, -0.3f, 0.2f, 0.1f};
    private static final float[][] MODELS = {plus(BASE, D1), plus(BASE, D2), plus(BASE, D3)};

    private static List<Map<String, Object>> weights(double... w) {
        return java.util.Arrays.stream(w).mapToObj(x -> Map.<String, Object>of("weight", x)).toList();
    }

    private static List<Map<String, Object>> weightsAndDensity(double density, double... w) {
        return java.util.Arrays.stream(w).mapToObj(x -> Map.<String, Object>of("weight", x, "density", density)).toList();
    }

    @Test
    void taskArithmeticAddsTheWeightedTaskVectors() {
        // Σ d = [0.0, 0.3, 0.2, -0.2, 0.5, -0.4]
        float[] out = merge(new TaskArithmeticMerge(false), BASE, MODELS, weights(1, 1, 1), Map.of());
        assertArrayEquals(new float[] {1.0f, 1.3f, 1.2f, 0.8f, 1.5f, 0.6f}, out, EPS);
        // weights 0.5, 1, 2: Σ w d = [-1.15, 0.6, 0.45, -0.5, 0.55, -0.1]; λ = 0.5 halves it
        float[] scaled = merge(new TaskArithmeticMerge(false), BASE, MODELS, weights(0.5, 1, 2), Map.of("lambda", 0.5));
        assertArrayEquals(new float[] {0.425f, 1.3f, 1.225f, 0.75f, 1.275f, 0.95f}, scaled, EPS);
    }

    @Test
    void taskArithmeticHonoursDensity() {
        // top 3 by |d|: t1 = [.5,0,0,0,.3,-.4], t2 = [.4,.3,-.2,0,0,0], t3 = [-.9,0,.3,-.3,0,0]
        float[] out = merge(new TaskArithmeticMerge(false), BASE, MODELS, weightsAndDensity(0.5, 1, 1, 1), Map.of());
        assertArrayEquals(new float[] {1.0f, 1.3f, 1.1f, 0.7f, 1.3f, 0.6f}, out, EPS);
    }

    /**
     * mergekit's rescale on a magnitude method: each kept task vector is scaled back to its L1 norm. t1 keeps 1.2
     * of 1.5 (×1.25), t2 0.9 of 1.1 (×11/9), t3 1.5 of 2.0 (×4/3).
     */
    @Test
    void taskArithmeticWithRescaleKeepsEachTaskVectorsL1Norm() {
        float[] out = merge(new TaskArithmeticMerge(false), BASE, MODELS, weightsAndDensity(0.5, 1, 1, 1),
                Map.of("rescale", "l1"));
        double s2 = 11.0 / 9;
        assertArrayEquals(new float[] {(float) (1 + 0.625 + 0.4 * s2 - 1.2), (float) (1 + 0.3 * s2),
                (float) (1 - 0.2 * s2 + 0.4), 0.6f, 1.375f, 0.5f}, out, EPS);
        // rescale: true is mergekit's spelling of l1
        assertArrayEquals(out, merge(new TaskArithmeticMerge(false), BASE, MODELS, weightsAndDensity(0.5, 1, 1, 1),
                Map.of("rescale", "true")), 0f);
    }

    /**
     * Entries tied with the threshold: k = 2 of t = [.5, −.5, .5, .1, −.5, 0], all four 0.5s tied. By default
     * exactly k are kept, the first by position, as mergekit keeps k; {@code threshold_ties: all} keeps every tie.
     * The tie pass must find them across blocks and workers alike.
     */
    @Test
    void exactlyKEntriesSurviveATiedThresholdByPosition() {
        float[] base = {0, 0, 0, 0, 0, 0};
        float[][] one = {{0.5f, -0.5f, 0.5f, 0.1f, -0.5f, 0f}};
        List<Map<String, Object>> perModel = List.of(Map.of("weight", 1.0, "density", 0.34)); // k = 2
        for (int block : new int[] {6, 4, 1}) {
            for (int workers : new int[] {1, 3}) {
                float[] exact = merge(new TaskArithmeticMerge(false), base, one, perModel,
                        Map.of("threshold_ties", "position"), 7, block, workers);
                assertArrayEquals(new float[] {0.5f, -0.5f, 0, 0, 0, 0}, exact, 0f, block + " " + workers);
            }
        }
        float[] all = merge(new TaskArithmeticMerge(false), base, one, perModel, Map.of("threshold_ties", "all"));
        assertArrayEquals(new float[] {0.5f, -0.5f, 0.5f, 0, -0.5f, 0}, all, 0f);
    }

    /**
     * Breadcrumbs keeps exactly ⌊density·n⌋ entries after the ⌊γ·n⌋ outliers, in the order |δ| descending, ties
     * by position. n = 10, density 0.4, γ 0.2: ranks 2 to 5 stay. t = [.5, −.5, .5, .3, .3, −.3, .3, .1, .5, 0]:
     * the 0.5s (positions 0, 1, 2, 8) hold ranks 0–3, the 0.3s (3, 4, 5, 6) ranks 4–7; positions 0 and 1 are the
     * outliers, 2, 8, 3 and 4 stay. Where one value spans both edges (the 0.5s of the second vector hold ranks
     * 0–6), positions 1 and 2 go as outliers and 3 to 6 stay. {@code threshold_ties: all} decides by the
     * thresholds: |δ| in [0.3, 0.5), and nothing in [0.5, 0.5).
     */
    @Test
    void breadcrumbsKeepsExactlyItsBandOfRanksByPosition() {
        float[] base = new float[10];
        float[][] straddled = {{0.5f, -0.5f, 0.5f, 0.3f, 0.3f, -0.3f, 0.3f, 0.1f, 0.5f, 0f}};
        float[][] oneValue = {{0.2f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.1f, 0f, 0.5f}};
        List<Map<String, Object>> perModel = List.of(Map.of("weight", 1.0, "density", 0.4, "gamma", 0.2));
        for (int block : new int[] {10, 4, 3, 1}) {
            for (int workers : new int[] {1, 3}) {
                String where = block + " " + workers;
                assertArrayEquals(new float[] {0, 0, 0.5f, 0.3f, 0.3f, 0, 0, 0, 0.5f, 0},
                        merge(new BreadcrumbsMerge(false), base, straddled, perModel, Map.of(), 7, block, workers), 0f, where);
                assertArrayEquals(new float[] {0, 0, 0, 0.5f, 0.5f, 0.5f, 0.5f, 0, 0, 0},
                        merge(new BreadcrumbsMerge(false), base, oneValue, perModel, Map.of(), 7, block, workers), 0f, where);
            }
        }
        Map<String, Object> all = Map.of("threshold_ties", "all");
        assertArrayEquals(new float[] {0, 0, 0, 0.3f, 0.3f, -0.3f, 0.3f, 0, 0, 0},
                merge(new BreadcrumbsMerge(false), base, straddled, perModel, all), 0f);
        assertArrayEquals(new float[10], merge(new BreadcrumbsMerge(false), base, oneValue, perModel, all), 0f);
    }

    /**
     * mergekit's rescale on breadcrumbs: the kept band is scaled by Σ|δ| / Σ|kept δ| of the whole tensor. Above,
     * Σ|t| = 4·0.5 + 4·0.3 + 0.1 and the kept 0.5 + 0.5 + 0.3 + 0.3; per row (one row here, distinct values),
     * the same rule over the row's own band.
     */
    @Test
    void breadcrumbsRescaleKeepsEachTaskVectorsL1Norm() {
        float[] base = new float[10];
        float[] t = {0.5f, -0.5f, 0.5f, 0.3f, 0.3f, -0.3f, 0.3f, 0.1f, 0.5f, 0f};
        List<Map<String, Object>> perModel = List.of(Map.of("weight", 1.0, "density", 0.4, "gamma", 0.2));
        double all = 4 * 0.5 + 4 * (double) 0.3f + 0.1f;
        float scale = (float) (all / (1.0 + 2 * (double) 0.3f));
        for (int block : new int[] {10, 3}) {
            assertArrayEquals(new float[] {0, 0, 0.5f * scale, 0.3f * scale, 0.3f * scale, 0, 0, 0, 0.5f * scale, 0},
                    merge(new BreadcrumbsMerge(false), base, new float[][] {t}, perModel, Map.of("rescale", "l1"), 7,
                            block, 2), 0f, "block " + block);
        }
        // distinct magnitudes, one row: outliers .9 and .8 go, .7 .6 .5 .4 stay, .3 .2 .1 0 go
        float[] row = {0.1f, -0.9f, 0.5f, 0.3f, -0.6f, 0.8f, 0f, 0.2f, 0.4f, -0.7f};
        double rowAll = 0;
        for (float v : row) {
            rowAll += Math.abs(v);
        }
        float rowScale = (float) (rowAll / ((double) 0.5f + 0.6f + 0.4f + 0.7f));
        assertArrayEquals(new float[] {0, 0, 0.5f * rowScale, 0, -0.6f * rowScale, 0, 0, 0, 0.4f * rowScale,
                -0.7f * rowScale}, merge(new BreadcrumbsMerge(false), base, new float[][] {row}, perModel,
                Map.of("rescale", "l1", "breadcrumbs_scope", "row")), 0f);
    }

    @Test
    void tiesElectsSignOnWeightedDeltasAndDividesByAgreeingWeights() {
        // equal weights: votes [0.0, .3, .1, -.3, .3, -.4]; entry 0 elects + (zero counts as +): (.5 + .4) / 2
        float[] equal = merge(new TiesMerge(), BASE, MODELS, weightsAndDensity(0.5, 1, 1, 1), Map.of());
        assertArrayEquals(new float[] {1.45f, 1.3f, 1.3f, 0.7f, 1.3f, 0.6f}, equal, EPS);
        // weights .5, 1, 2: weighted t = [.25,0,0,0,.15,-.2], [.4,.3,-.2,0,0,0], [-1.8,0,.6,-.6,0,0]
        // votes [-1.15, .3, .4, -.6, .15, -.2] -> entry 0: -1.8 / 2; entry 4: .15 / .5; entry 5: -.2 / .5
        float[] weighted = merge(new TiesMerge(), BASE, MODELS, weightsAndDensity(0.5, 0.5, 1, 2), Map.of());
        assertArrayEquals(new float[] {0.1f, 1.3f, 1.3f, 0.7f, 1.3f, 0.6f}, weighted, EPS);
    }

    @Test
    void tiesPaperVariantElectsOnUnweightedDeltasAndDividesByTheCount() {
        // votes on unweighted t: [0.0, .3, .1, -.3, .3, -.4]; entry 0: (.25 + .4) / 2 models
        float[] out = merge(new TiesMerge(), BASE, MODELS, weightsAndDensity(0.5, 0.5, 1, 2), Map.of("election", "paper"));
        assertArrayEquals(new float[] {1.325f, 1.3f, 1.6f, 0.4f, 1.15f, 0.8f}, out, EPS);
    }

    @Test
    void tiesWithoutNormalizeSumsTheAgreeingDeltas() {
        float[] out = merge(new TiesMerge(), BASE, MODELS, weightsAndDensity(0.5, 1, 1, 1), Map.of("normalize", false));
        assertArrayEquals(new float[] {1.9f, 1.3f, 1.3f, 0.7f, 1.3f, 0.6f}, out, EPS);
    }

    @Test
    void magnitudePruneAveragesThePrunedTaskVectors() {
        // Σ t = [0, .3, .1, -.3, .3, -.4], divided by Σ w = 3
        float[] out = merge(new TaskArithmeticMerge(true), BASE, MODELS, weightsAndDensity(0.5, 1, 1, 1), Map.of());
        assertArrayEquals(new float[] {1f, 1.1f, 1 + 0.1f / 3, 0.9f, 1.1f, 1 - 0.4f / 3}, out, EPS);
    }

    @Test
    void linearIsTheWeightedAverageAndZeroWeightsDropAModel() {
        float[] equal = merge(new LinearMerge(), null, MODELS, weights(1, 1, 1), Map.of());
        assertArrayEquals(new float[] {1f, 1.1f, 1 + 0.2f / 3, 1 - 0.2f / 3, 1 + 0.5f / 3, 1 - 0.4f / 3}, equal, EPS);
        float[] skip = merge(new LinearMerge(), null, MODELS, weights(1, 0, 1), Map.of());
        assertArrayEquals(new float[] {0.8f, 1.0f, 1.2f, 0.85f, 1.25f, 0.85f}, skip, EPS);
        float[] sum = merge(new LinearMerge(), null, MODELS, weights(1, 0, 1), Map.of("normalize", false));
        assertArrayEquals(new float[] {1.6f, 2.0f, 2.4f, 1.7f, 2.5f, 1.7f}, sum, EPS);
    }

    /** Which entries DARE keeps for model m: the seeded hash is the one input not computed by hand here. */
    private static boolean[] kept(long seed, int m, double density) {
        long tensorSeed = seed; // MethodHarness passes the seed as the tensor's seed
        boolean[] keep = new boolean[BASE.length];
        for (int i = 0; i < keep.length; i++) {
            keep[i] = RandomMask.keeps(RandomMask.seed(tensorSeed, m), i,
                    (int) Math.round(density * (1 << 24)));
        }
        return keep;
    }

    @Test
    void dareRescalesWhatItKeepsAndTiesElectsOnTheResult() {
        float[][] deltas = {D1, D2, D3};
        long seed = 3;
        boolean[][] keep = {kept(seed, 0, 0.5), kept(seed, 1, 0.5), kept(seed, 2, 0.5)};
        for (boolean[] k : keep) { // this seed drops some entries and keeps some of every model
            String mask = java.util.Arrays.toString(k);
            org.junit.jupiter.api.Assertions.assertTrue(mask.contains("true") && mask.contains("false"), mask);
        }
        // inverse_density: a kept entry becomes δ / 0.5; dare_linear sums them with weights 1, 0.5, 2
        double[] w = {1, 0.5, 2};
        float[] linear = MethodHarness.merge(new DareLinearMerge(), BASE, MODELS, weightsAndDensity(0.5, w),
                Map.of("rescale", "inverse_density"), seed, 4, 2);
        for (int i = 0; i < 6; i++) {
            double sum = 0;
            for (int m = 0; m < 3; m++) {
                sum += keep[m][i] ? w[m] * deltas[m][i] / 0.5 : 0;
            }
            assertEquals(1 + sum, linear[i], EPS, "dare_linear entry " + i);
        }
        // l1 (mergekit): kept entries scaled by Σ|δ| / Σ|kept δ| per model; then TIES' election on the result
        double[] scale = new double[3];
        for (int m = 0; m < 3; m++) {
            double all = 0;
            double kept = 0;
            for (int i = 0; i < 6; i++) {
                all += Math.abs(deltas[m][i]);
                kept += keep[m][i] ? Math.abs(deltas[m][i]) : 0;
            }
            scale[m] = kept < 1e-7 ? 1 : all / kept;
        }
        float[] ties = MethodHarness.merge(new DareTiesMerge(), BASE, MODELS, weightsAndDensity(0.5, w),
                Map.of("normalize", true), seed, 4, 2);
        for (int i = 0; i < 6; i++) {
            double vote = 0;
            double[] weighted = new double[3];
            for (int m = 0; m < 3; m++) {
                weighted[m] = keep[m][i] ? w[m] * deltas[m][i] * scale[m] : 0;
                vote += weighted[m];
            }
            double mixed = 0;
            double divisor = 0;
            for (int m = 0; m < 3; m++) {
                if (vote >= 0 ? weighted[m] > 0 : weighted[m] < 0) {
                    mixed += weighted[m];
                    divisor += w[m];
                }
            }
            assertEquals(1 + mixed / (divisor == 0 ? 1 : divisor), ties[i], 1e-5f, "dare_ties entry " + i);
        }
    }

    @Test
    void fisherWeighsEachParameterByTheModelsFishers() {
        // θ₁ = [1, 2, 5], θ₂ = [3, 6, 7]; F₁ = [1, 0, 0], F₂ = [1, 3, 0]; weights 1, 1; no normalisation
        // original (floor on the first model only): [(1 + 3)/2, (1e-6·2 + 3·6)/(1e-6 + 3), 5 (only F₁ floored: 1e-6·5/1e-6)]
        // mergelm (floor added to all): entry 2 = (1e-6·5 + 1e-6·7)/2e-6 = 6
        float[][] inputs = {{1, 2, 5}, {3, 6, 7}, {1, 0, 0}, {1, 3, 0}};
        Map<String, Object> global = Map.of(MergeMethod.COMPANIONS_PRESENT, true, "normalize_fishers", false);
        List<Map<String, Object>> w = weights(1, 1);
        float[] original = merge(new FisherMerge(), null, inputs, w, global);
        assertArrayEquals(new float[] {2, (float) ((2e-6 + 18) / (3 + 1e-6)), 5}, original, EPS);
        float[] mergelm = merge(new FisherMerge(), null, inputs, w, Map.of(MergeMethod.COMPANIONS_PRESENT, true,
                "normalize_fishers", false, "variant", "mergelm"));
        assertArrayEquals(new float[] {2, (float) ((1e-6 * 2 + 3.000001 * 6) / (1e-6 + 3.000001)), 6}, mergelm, EPS);
        // weights 3 and 1 with equal Fishers: the weighted average (3·θ₁ + θ₂)/4
        float[] equal = merge(new FisherMerge(), null, new float[][] {{1, 2, 5}, {3, 6, 7}, {2, 2, 2}, {2, 2, 2}},
                weights(3, 1), global);
        assertArrayEquals(new float[] {1.5f, 3, 5.5f}, equal, EPS);
        // without Fishers for this tensor: the weighted average as well
        float[] fallback = merge(new FisherMerge(), null, new float[][] {{1, 2, 5}, {3, 6, 7}}, weights(3, 1),
                Map.of(MergeMethod.COMPANIONS_PRESENT, false));
        assertArrayEquals(new float[] {1.5f, 3, 5.5f}, fallback, EPS);
    }
}
