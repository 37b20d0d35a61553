package io.modelmerge.engine.method;

import static io.modelmerge.engine.method.MethodHarness.merge;
import static io.modelmerge.engine.method.MethodHarness.plus;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class BreadcrumbsAndDellaTest {
    private static final float[] ZERO = new float[10];
    /** |δ| by rank, largest first: .9 (1), .7 (5), .6 (9), .5 (4), .4 (8), .3 (2), .2 (6), .1 (0), .05 (3), .02 (7). */
    private static final float[] DELTA = {0.1f, -0.9f, 0.3f, 0.05f, -0.5f, 0.7f, 0.2f, -0.02f, 0.4f, 0.6f};

    private static List<Map<String, Object>> one(double density, double gamma) {
        return List.of(Map.of("weight", 1.0, "density", density, "gamma", gamma));
    }

    @Test
    void breadcrumbsDropsTheOutliersThenTheSmallest() {
        // n = 10, density 0.5, gamma 0.1: the largest (.9) goes, the next five stay
        float[] out = merge(new BreadcrumbsMerge(false), ZERO, new float[][] {DELTA}, one(0.5, 0.1), Map.of());
        assertArrayEquals(new float[] {0, 0, 0.3f, 0, -0.5f, 0.7f, 0, 0, 0.4f, 0.6f}, out, 1e-7f);
    }

    @Test
    void aGammaTooSmallForOneOutlierKeepsTheTopDensityInsteadOfDroppingTheTensor() {
        // ⌊0.01 · 10⌋ = 0: mergekit's indices[n_bot:-0] is empty and zeroes the tensor; the top five stay here
        float[] out = merge(new BreadcrumbsMerge(false), ZERO, new float[][] {DELTA}, one(0.5, 0.01), Map.of());
        assertArrayEquals(new float[] {0, -0.9f, 0, 0, -0.5f, 0.7f, 0, 0, 0.4f, 0.6f}, out, 1e-7f);
    }

    @Test
    void breadcrumbsTiesElectsSignsAfterTheCut() {
        // n = 5, density 0.6, gamma 0.2: the largest goes, the next three stay, the smallest goes
        // t₁ = [0, -.1, .3, -.2, 0] (δ₁ = [.5, -.1, .3, -.2, .05]); t₂ = [-.4, .2, 0, 0, .3] (δ₂ = [-.4, .2, -.6, .1, .3])
        float[][] models = {{0.5f, -0.1f, 0.3f, -0.2f, 0.05f}, {-0.4f, 0.2f, -0.6f, 0.1f, 0.3f}};
        List<Map<String, Object>> two = List.of(Map.of("weight", 1.0, "density", 0.6, "gamma", 0.2),
                Map.of("weight", 1.0, "density", 0.6, "gamma", 0.2));
        // summed: entry 1 is -.1 + .2; sign-elected: + wins and only t₂ = .2 agrees
        assertArrayEquals(new float[] {-0.4f, 0.1f, 0.3f, -0.2f, 0.3f},
                merge(new BreadcrumbsMerge(false), new float[5], models, two, Map.of()), 1e-7f);
        assertArrayEquals(new float[] {-0.4f, 0.2f, 0.3f, -0.2f, 0.3f},
                merge(new BreadcrumbsMerge(true), new float[5], models, two, Map.of()), 1e-7f);
    }

    @Test
    void rowScopeRanksWithinEachRow() {
        // two rows of five, density 0.4, gamma 0.2: per row one outlier goes and two stay
        float[] rows = merge(new BreadcrumbsMerge(false), ZERO, new float[][] {DELTA}, one(0.4, 0.2),
                Map.of("breadcrumbs_scope", "row"), 0, 3, 2, 5);
        assertArrayEquals(new float[] {0, 0, 0.3f, 0, -0.5f, 0, 0, 0, 0.4f, 0.6f}, rows, 1e-7f);
        // over the whole tensor: two outliers (.9, .7) go and four stay
        float[] tensor = merge(new BreadcrumbsMerge(false), ZERO, new float[][] {DELTA}, one(0.4, 0.2), Map.of());
        assertArrayEquals(new float[] {0, 0, 0.3f, 0, -0.5f, 0, 0, 0, 0.4f, 0.6f}, tensor, 1e-7f);
        float[] rows2 = merge(new BreadcrumbsMerge(false), ZERO, new float[][] {DELTA}, one(0.6, 0.2),
                Map.of("breadcrumbs_scope", "row"), 0, 5, 1, 5);
        // per row n = 5: three stay after one outlier: row 0 keeps .5 .3 .1, row 1 keeps .6 .4 .2
        assertArrayEquals(new float[] {0.1f, 0, 0.3f, 0, -0.5f, 0, 0.2f, 0, 0.4f, 0.6f}, rows2, 1e-7f);
    }

    @Test
    void breadcrumbsMatchesTheSortedReferenceOnRandomTensorsAcrossBlocksAndWorkers() {
        Random random = new Random(3);
        int n = 5000;
        float[][] inputs = MethodReferences.baseAndFineTunes(random, n, 0.1, 0.2);
        float[] base = inputs[0];
        float[][] models = java.util.Arrays.copyOfRange(inputs, 1, inputs.length);
        List<Map<String, Object>> perModel = List.of(Map.of("weight", 0.7, "density", 0.3, "gamma", 0.05),
                Map.of("weight", 0.6, "density", 0.5, "gamma", 0.02));
        float[] out = merge(new BreadcrumbsMerge(false), base, models, perModel, Map.of("lambda", 1.5), 0, 333, 3);
        double[] t0 = MethodReferences.breadcrumbs(MethodReferences.delta(models[0], base), 0.3, 0.05);
        double[] t1 = MethodReferences.breadcrumbs(MethodReferences.delta(models[1], base), 0.5, 0.02);
        for (int i = 0; i < n; i++) {
            assertEquals(base[i] + 1.5 * (0.7 * t0[i] + 0.6 * t1[i]), out[i], 1e-5, "entry " + i);
        }
    }

    @Test
    void withoutOutliersBreadcrumbsIsTaskArithmeticAndBreadcrumbsTiesIsTies() {
        Random random = new Random(4);
        int n = 3000;
        float[][] inputs = MethodReferences.baseAndFineTunes(random, n, 0.1, 0.1, 0.1);
        float[] base = inputs[0];
        float[][] models = java.util.Arrays.copyOfRange(inputs, 1, inputs.length);
        List<Map<String, Object>> crumbs = List.of(Map.of("weight", 1.0, "density", 0.4, "gamma", 0.0),
                Map.of("weight", 0.5, "density", 0.6, "gamma", 0.0), Map.of("weight", 2.0, "density", 0.2, "gamma", 0.0));
        List<Map<String, Object>> plain = crumbs.stream()
                .map(m -> Map.<String, Object>of("weight", m.get("weight"), "density", m.get("density"))).toList();
        assertArrayEquals(merge(new TaskArithmeticMerge(false), base, models, plain, Map.of()),
                merge(new BreadcrumbsMerge(false), base, models, crumbs, Map.of()), 1e-6f);
        assertArrayEquals(merge(new TiesMerge(), base, models, plain, Map.of("normalize", false)),
                merge(new BreadcrumbsMerge(true), base, models, crumbs, Map.of()), 1e-6f);
        assertArrayEquals(merge(new TiesMerge(), base, models, plain, Map.of("election", "paper")),
                merge(new BreadcrumbsMerge(true), base, models, crumbs, Map.of("election", "paper", "normalize", true)), 1e-6f);
    }

    @Test
    void dellaRefusesAnEpsilonThatLeavesTheUnitInterval() throws RecipeException {
        RecipeException e = assertThrows(RecipeException.class, () -> new DellaMerge(false).check(
                new TensorParameters("mlp.w", 10, List.of(Map.of("weight", 1.0, "density", 0.1, "epsilon", 0.15)),
                        Map.of(), 0)));
        assertTrue(e.getMessage().contains("epsilon 0.15") && e.getMessage().contains("mlp.w"), e.getMessage());
        new DellaMerge(false).check(new TensorParameters("mlp.w", 10,
                List.of(Map.of("weight", 1.0, "density", 0.5, "epsilon", 0.15)), Map.of(), 0));
    }

    /** 400 identical rows of 50 entries whose magnitudes rank as their column: keep rates follow the ranks. */
    @Test
    void dellaKeepsEachEntryWithAProbabilityRisingWithItsRankInTheRow() {
        int columns = 50;
        int rows = 400;
        float[] delta = new float[rows * columns];
        for (int i = 0; i < delta.length; i++) {
            int c = i % columns;
            delta[i] = (c % 2 == 0 ? 1 : -1) * (c + 1) * 0.01f;
        }
        float[] base = new float[delta.length];
        List<Map<String, Object>> one = List.of(Map.of("weight", 1.0, "density", 0.5, "epsilon", 0.4));
        float[] kept = merge(new DellaMerge(true), base, new float[][] {delta}, one, Map.of("rescale", "none"), 11, 700, 2, columns);
        float[] rescaled = merge(new DellaMerge(true), base, new float[][] {delta}, one,
                Map.of("rescale", "inverse_probability"), 11, 700, 2, columns);
        for (int c = 0; c < columns; c++) {
            double p = 0.1 + 0.8 * c / (columns - 1);
            int count = 0;
            double mean = 0;
            for (int r = 0; r < rows; r++) {
                float v = kept[r * columns + c];
                assertTrue(v == 0 || v == delta[r * columns + c]);
                count += v != 0 ? 1 : 0;
                mean += rescaled[r * columns + c] / rows;
            }
            double sd = Math.sqrt(p * (1 - p) / rows);
            assertEquals(p, count / (double) rows, 4.5 * sd, "keep rate of rank " + c);
            // dividing by p keeps the expectation: E[mask/p · δ] = δ
            assertEquals(delta[c], mean, 4.5 * sd / p * Math.abs(delta[c]), "mean of column " + c);
        }
    }

    @Test
    void dellaL1RescaleKeepsTheTaskVectorsL1NormAndIsReproducible() {
        Random random = new Random(5);
        int columns = 64;
        float[] base = MethodReferences.random(random, columns * 40, 1);
        float[] model = plus(base, MethodReferences.random(random, base.length, 0.05));
        List<Map<String, Object>> one = List.of(Map.of("weight", 1.0, "density", 0.3, "epsilon", 0.1));
        float[] out = merge(new DellaMerge(true), base, new float[][] {model}, one, Map.of(), 21, 256, 3, columns);
        double before = 0;
        double after = 0;
        int zeros = 0;
        for (int i = 0; i < base.length; i++) {
            before += Math.abs(model[i] - base[i]);
            after += Math.abs(out[i] - base[i]);
            zeros += out[i] == base[i] ? 1 : 0;
        }
        assertEquals(before, after, 1e-3 * before);
        assertEquals(0.7, zeros / (double) base.length, 0.05);
        assertArrayEquals(out, merge(new DellaMerge(true), base, new float[][] {model}, one, Map.of(), 21, 64 * 7, 1, columns));
        assertFalse(java.util.Arrays.equals(out, merge(new DellaMerge(true), base, new float[][] {model}, one, Map.of(), 22, 256, 3, columns)));
    }

    @Test
    void dellaAtFullDensityIsTiesAndDellaLinearIsTaskArithmetic() {
        Random random = new Random(6);
        int n = 900;
        float[][] inputs = MethodReferences.baseAndFineTunes(random, n, 0.1, 0.1);
        float[] base = inputs[0];
        float[][] models = java.util.Arrays.copyOfRange(inputs, 1, inputs.length);
        List<Map<String, Object>> full = List.of(Map.of("weight", 1.0, "density", 1.0), Map.of("weight", 0.5, "density", 1.0));
        assertArrayEquals(merge(new TiesMerge(), base, models, full, Map.of()),
                merge(new DellaMerge(false), base, models, full, Map.of(), 0, 90, 2, 30), 1e-6f);
        assertArrayEquals(merge(new TaskArithmeticMerge(false), base, models, full, Map.of()),
                merge(new DellaMerge(true), base, models, full, Map.of(), 0, 90, 2, 30), 1e-6f);
    }
}
