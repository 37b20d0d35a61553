package io.modelmerge.engine.method;

import static io.modelmerge.engine.method.MethodHarness.merge;
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

/** {@code slerp} on cases worked out by hand, its endpoints, its linear fallback, and a direct computation. */
class SlerpMergeTest {
    private static final float EPS = 1e-6f;
    private static final List<Map<String, Object>> ONE_MODEL = List.of(Map.of());
    private static final float HALF_SQRT2 = (float) Math.sqrt(0.5);

    private static float[] slerp(float[] base, float[] model, double t) {
        return merge(new SlerpMerge(), base, new float[][] {model}, ONE_MODEL, Map.of("t", t));
    }

    @Test
    void orthogonalTensorsMeetHalfwayOnTheArc() {
        // θ = π/2, sin θ = 1: both scales are sin(π/4) = √½, applied to the unnormalised tensors.
        assertArrayEquals(new float[] {HALF_SQRT2, HALF_SQRT2, 0, 0},
                slerp(new float[] {1, 0, 0, 0}, new float[] {0, 1, 0, 0}, 0.5), EPS);
        assertArrayEquals(new float[] {2 * HALF_SQRT2, 3 * HALF_SQRT2},
                slerp(new float[] {2, 0}, new float[] {0, 3}, 0.5), EPS);
        // t = 1/3 of a right angle: sin(π/3) and sin(π/6).
        assertArrayEquals(new float[] {(float) Math.sin(Math.PI / 3), 0.5f},
                slerp(new float[] {1, 0}, new float[] {0, 1}, 1.0 / 3), EPS);
    }

    @Test
    void tZeroAndOneReturnTheEndpointsExactly() {
        Random random = new Random(3);
        float[] base = new float[37];
        float[] model = new float[37];
        for (int i = 0; i < base.length; i++) {
            base[i] = (float) random.nextGaussian();
            model[i] = (float) random.nextGaussian();
        }
        assertArrayEquals(base, slerp(base, model, 0), 0f);
        assertArrayEquals(model, slerp(base, model, 1), 0f);
    }

    @Test
    void nearlyParallelTensorsAreInterpolatedLinearly() {
        float[] base = {1, 2, 3, 4};
        float[] model = {2, 4, 6, 8};   // cos θ = 1
        assertArrayEquals(new float[] {1.25f, 2.5f, 3.75f, 5f}, slerp(base, model, 0.25), EPS);
    }

    @Test
    void matchesADirectComputationOverManyBlocksAndWorkers() {
        Random random = new Random(11);
        float[] base = new float[1001];
        float[] model = new float[1001];
        for (int i = 0; i < base.length; i++) {
            base[i] = (float) random.nextGaussian();
            model[i] = 0.6f * base[i] + 0.8f * (float) random.nextGaussian();
        }
        double t = 0.3;
        float[] expected = ReferenceMerges.slerp(base, model, t);
        assertArrayEquals(expected, merge(new SlerpMerge(), base, new float[][] {model}, ONE_MODEL, Map.of("t", t), 7, 64, 3),
                1e-5f);
    }

    @Test
    void refusesOtherThanTwoModelsAndTOutsideTheUnitInterval() {
        SlerpMerge slerp = new SlerpMerge();
        RecipeException three = assertThrows(RecipeException.class, () -> slerp.checkModelCount(
                new TensorParameters("w", 4, List.of(Map.of(), Map.of()), Map.of("t", 0.5), 0)));
        assertEquals("slerp merges exactly one model besides the base_model per tensor; tensor 'w' has 2",
                three.getMessage());
    }

    /**
     * mergekit takes t outside [0, 1] and extrapolates along the arc: a = (1, 0) and b = (0, 1) are 90° apart, so
     * t = 1.5 gives sin(−π/4)·a + sin(3π/4)·b.
     */
    @Test
    void extrapolatesPastTheEndsAsMergekitDoes() {
        float h = (float) Math.sqrt(0.5);
        assertArrayEquals(new float[] {-h, h}, slerp(new float[] {1, 0}, new float[] {0, 1}, 1.5), 1e-6f);
        assertArrayEquals(new float[] {(float) Math.cos(-Math.PI / 4), (float) Math.sin(-Math.PI / 4)},
                slerp(new float[] {1, 0}, new float[] {0, 1}, -0.5), 1e-6f);
    }
}
