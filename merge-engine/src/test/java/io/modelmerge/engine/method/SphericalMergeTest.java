package io.modelmerge.engine.method;

import static io.modelmerge.engine.method.MethodHarness.merge;
import static io.modelmerge.engine.method.MethodHarness.plus;
import static io.modelmerge.engine.method.MethodReferences.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.exec.ReferenceMerges;
import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** model_stock, multislerp, karcher and nuslerp: hand-computed cases, invariants, and the direct computations. */
class SphericalMergeTest {
    private static final List<Map<String, Object>> NONE2 = List.of(Map.of(), Map.of());

    private static List<Map<String, Object>> weights(double... w) {
        return java.util.Arrays.stream(w).mapToObj(x -> Map.<String, Object>of("weight", x)).toList();
    }


    @Test
    void modelStockByHand() {
        // τ₁ = [1, 0], τ₂ = [1, 1]: cos = 1/√2, t = 2cos/(1 + cos) = 0.828427; θ = t·mean(θᵢ) + (1 − t)·θ₀
        float[] base = {2, 3};
        float[] out = merge(new ModelStockMerge(), base, new float[][] {{3, 3}, {3, 4}}, NONE2, Map.of());
        double t = 2 / Math.sqrt(2) / (1 + 1 / Math.sqrt(2));
        assertArrayEquals(new float[] {(float) (2 + t), (float) (3 + t / 2)}, out, 1e-6f);
        // orthogonal task vectors: cos = 0, t = 0, the base comes back
        assertArrayEquals(base, merge(new ModelStockMerge(), base, new float[][] {{3, 3}, {2, 4}}, NONE2, Map.of()), 1e-7f);
        // opposite task vectors: cos = -1, where t = 2cos/(1 + cos) divides by zero; taken as 0, the base
        assertArrayEquals(base, merge(new ModelStockMerge(), base, new float[][] {{3, 4}, {1, 2}}, NONE2, Map.of()), 1e-7f);
    }

    @Test
    void modelStockOfIdenticalFineTunesReturnsThemAndMatchesTheDirectComputation() {
        Random random = new Random(7);
        int n = 2000;
        float[] base = MethodReferences.random(random, n, 1);
        float[] tuned = plus(base, MethodReferences.random(random, n, 0.1));
        float[] out = merge(new ModelStockMerge(), base, new float[][] {tuned, tuned.clone(), tuned.clone()},
                List.of(Map.of(), Map.of(), Map.of()), Map.of(), 0, 128, 3);
        assertArrayEquals(tuned, out, 1e-6f);
        float[][] models = {plus(base, MethodReferences.random(random, n, 0.1)), plus(base, MethodReferences.random(random, n, 0.1)),
                plus(tuned, MethodReferences.random(random, n, 0.05))};
        assertClose(MethodReferences.modelStock(base, models),
                merge(new ModelStockMerge(), base, models, List.of(Map.of(), Map.of(), Map.of()), Map.of(), 0, 97, 2), 1e-5);
    }

    @Test
    void modelStockFilterWiseTakesTheAnglePerRow() {
        // row 0: the hand case above; row 1: orthogonal task vectors, so the base row comes back
        float[] base = {2, 3, 2, 3};
        float[][] models = {{3, 3, 3, 3}, {3, 4, 2, 4}};
        float[] out = merge(new ModelStockMerge(), base, models, NONE2, Map.of("filter_wise", true), 0, 3, 2, 2);
        double t = 2 / Math.sqrt(2) / (1 + 1 / Math.sqrt(2));
        assertArrayEquals(new float[] {(float) (2 + t), (float) (3 + t / 2), 2, 3}, out, 1e-6f);
    }

    @Test
    void modelStockNeedsTwoFineTunes() {
        RecipeException e = assertThrows(RecipeException.class, () -> new ModelStockMerge().checkModelCount(
                new TensorParameters("w", 2, List.of(Map.of()), Map.of(), 0)));
        assertEquals("model_stock merges at least two models besides the base_model per tensor; tensor 'w' has 1",
                e.getMessage());
    }

    @Test
    void multislerpOfTwoEqualNormsAtEqualWeightsIsSlerpAtOneHalf() {
        Random random = new Random(8);
        float[] a = MethodReferences.random(random, 1000, 1);
        float[] b = MethodReferences.random(random, 1000, 1);
        double scale = MethodReferences.norm(MethodReferences.delta(a, new float[1000]))
                / MethodReferences.norm(MethodReferences.delta(b, new float[1000]));
        for (int i = 0; i < b.length; i++) {
            b[i] *= (float) scale;
        }
        float[] out = merge(new MultiSlerpMerge(), null, new float[][] {a, b}, weights(1, 1), Map.of(), 0, 64, 2);
        assertArrayEquals(ReferenceMerges.slerp(a, b, 0.5), out, 2e-5f);
    }

    @Test
    void multislerpMatchesTheDirectComputationWithAndWithoutBase() {
        Random random = new Random(9);
        int n = 1500;
        float[][] inputs = MethodReferences.baseAndFineTunes(random, n, 0.1, 0.2, 0.1);
        float[] base = inputs[0];
        float[][] models = java.util.Arrays.copyOfRange(inputs, 1, inputs.length);
        double[] w = {0.2, 0.5, 0.3};
        assertClose(MethodReferences.multislerp(base, models, w),
                merge(new MultiSlerpMerge(), base, models, weights(w), Map.of(), 0, 100, 3), 1e-5);
        assertClose(MethodReferences.multislerp(null, models, w),
                merge(new MultiSlerpMerge(), null, models, weights(w), Map.of(), 0, 100, 3), 1e-5);
        // one model is itself
        assertArrayEquals(models[1], merge(new MultiSlerpMerge(), base, new float[][] {models[1]}, weights(1), Map.of()), 1e-6f);
    }

    @Test
    void multislerpRefusesAntipodalTensorsThatCancel() {
        float[] a = {1, 0};
        float[] b = {-1, 0};
        float[] c = {2, 0};
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> merge(new MultiSlerpMerge(), null,
                new float[][] {a, b, c, new float[] {-2, 0}}, weights(1, 1, 1, 1), Map.of()));
        assertTrue(e.getMessage().contains("'t'"), e.getMessage());
        // two of them fall back to the linear average, as mergekit does
        assertArrayEquals(new float[] {0, 0}, merge(new MultiSlerpMerge(), null, new float[][] {a, b}, weights(1, 1), Map.of()), 1e-7f);
    }

    @Test
    void karcherHonoursTheWeights() {
        // unit vectors at 0° and 90°: the weighted Karcher mean of 3:1 lies at 22.5° on the arc (mergekit: 45°)
        float[] out = merge(new KarcherMerge(), null, new float[][] {{1, 0}, {0, 1}}, weights(3, 1),
                Map.of("max_iter", 50.0, "tol", 1e-9));
        assertArrayEquals(new float[] {(float) Math.cos(Math.PI / 8), (float) Math.sin(Math.PI / 8)}, out, 1e-6f);
        float[] even = merge(new KarcherMerge(), null, new float[][] {{1, 0}, {0, 1}}, weights(1, 1), Map.of());
        assertArrayEquals(new float[] {(float) Math.sqrt(0.5), (float) Math.sqrt(0.5)}, even, 1e-6f);
        // the same direction at norms 1 and 3: the direction, at the weighted norm 2
        assertArrayEquals(new float[] {1.2f, 1.6f}, merge(new KarcherMerge(), null,
                new float[][] {{0.6f, 0.8f}, {1.8f, 2.4f}}, weights(1, 1), Map.of()), 1e-6f);
    }

    @Test
    void karcherMatchesTheDirectIteration() {
        Random random = new Random(10);
        int n = 1200;
        float[][] models = {MethodReferences.random(random, n, 1), MethodReferences.random(random, n, 1.2),
                MethodReferences.random(random, n, 0.8)};
        double[] w = {1, 2, 0.5};
        assertClose(MethodReferences.karcher(models, w, 10, 1e-5),
                merge(new KarcherMerge(), null, models, weights(w), Map.of(), 0, 100, 2), 1e-5);
    }

    @Test
    void nuslerpIsSlerpOfTheTaskVectorsPerTensorRowOrColumn() {
        Random random = new Random(11);
        int rows = 6;
        int columns = 40;
        float[] base = MethodReferences.random(random, rows * columns, 1);
        float[][] models = {plus(base, MethodReferences.random(random, rows * columns, 0.1)),
                plus(base, MethodReferences.random(random, rows * columns, 0.1))};
        // weights 1 and 3: t = 3/4
        float[] whole = merge(new NuSlerpMerge(), base, models, weights(1, 3), Map.of(), 0, 50, 2, columns);
        float[] expected = plus(base, ReferenceMerges.slerp(delta(models[0], base), delta(models[1], base), 0.75));
        assertArrayEquals(expected, whole, 1e-5f);
        float[] perRow = merge(new NuSlerpMerge(), base, models, weights(1, 3), Map.of("nuslerp_flatten", false), 0, 50, 2, columns);
        float[] perColumn = merge(new NuSlerpMerge(), base, models, weights(1, 3),
                Map.of("nuslerp_flatten", false, "nuslerp_row_wise", true), 0, 50, 2, columns);
        for (int r = 0; r < rows; r++) {
            float[] a = java.util.Arrays.copyOfRange(delta(models[0], base), r * columns, (r + 1) * columns);
            float[] b = java.util.Arrays.copyOfRange(delta(models[1], base), r * columns, (r + 1) * columns);
            float[] row = ReferenceMerges.slerp(a, b, 0.75);
            for (int c = 0; c < columns; c++) {
                assertEquals(base[r * columns + c] + row[c], perRow[r * columns + c], 1e-5f);
            }
        }
        for (int c = 0; c < columns; c++) {
            float[] a = new float[rows];
            float[] b = new float[rows];
            for (int r = 0; r < rows; r++) {
                a[r] = models[0][r * columns + c] - base[r * columns + c];
                b[r] = models[1][r * columns + c] - base[r * columns + c];
            }
            float[] column = ReferenceMerges.slerp(a, b, 0.75);
            for (int r = 0; r < rows; r++) {
                assertEquals(base[r * columns + c] + column[r], perColumn[r * columns + c], 1e-5f);
            }
        }
        // A vector (a norm's weight) row-wise: mergekit's transpose leaves it whole, so one angle, as flattened.
        float[] vectorBase = java.util.Arrays.copyOf(base, columns);
        float[][] vectors = {java.util.Arrays.copyOf(models[0], columns), java.util.Arrays.copyOf(models[1], columns)};
        float[] rowWiseVector = merge(new NuSlerpMerge(), vectorBase, vectors, weights(1, 3), Map.of("nuslerp_flatten", false,
                "nuslerp_row_wise", true, MergeMethod.TENSOR_RANK, 1), 0, 50, 2, columns);
        assertArrayEquals(plus(vectorBase, ReferenceMerges.slerp(delta(vectors[0], vectorBase), delta(vectors[1], vectorBase),
                0.75)), rowWiseVector, 1e-5f);
        // without a base the models themselves are interpolated; t = 0 and 1 return the endpoints
        assertArrayEquals(models[0], merge(new NuSlerpMerge(), null, models, weights(1, 0), Map.of()), 1e-6f);
        assertArrayEquals(models[1], merge(new NuSlerpMerge(), null, models, weights(0, 1), Map.of()), 1e-6f);
    }

    private static float[] delta(float[] model, float[] base) {
        float[] d = new float[model.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = model[i] - base[i];
        }
        return d;
    }
}
