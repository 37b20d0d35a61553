package io.modelmerge.engine.method;

import static io.modelmerge.engine.method.MethodHarness.merge;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** ExPO: θ_aligned + α(θ_aligned − θ_sft), the identity at α = 0 and linear in α. */
class ExtrapolateMergeTest {
    private static final List<Map<String, Object>> ONE = List.of(Map.of());

    @Test
    void handComputedAndTheIdentityAtZero() {
        float[] sft = {1, 2, -0f, 4};
        float[] aligned = {1.5f, 1, -0f, -4};
        // α = 0.5: 1.5 + .5·.5, 1 + .5·(−1), −0 + .5·0, −4 + .5·(−8)
        assertArrayEquals(new float[] {1.75f, 0.5f, 0f, -8f},
                merge(new ExtrapolateMerge(), sft, new float[][] {aligned}, ONE, Map.of("alpha", 0.5)), 0f);
        float[] same = merge(new ExtrapolateMerge(), new float[] {5, -3, 2, 1}, new float[][] {aligned}, ONE,
                Map.of("alpha", 0.0));
        for (int i = 0; i < aligned.length; i++) {
            assertEquals(Float.floatToRawIntBits(aligned[i]), Float.floatToRawIntBits(same[i]), "element " + i);
        }
    }

    @Test
    void theStepGrowsLinearlyInAlpha() {
        Random random = new Random(3);
        float[] sft = new float[257];
        float[] aligned = new float[257];
        for (int i = 0; i < sft.length; i++) {
            sft[i] = (float) random.nextGaussian();
            aligned[i] = sft[i] + 0.1f * (float) random.nextGaussian();
        }
        float[] one = merge(new ExtrapolateMerge(), sft, new float[][] {aligned}, ONE, Map.of("alpha", 0.25));
        float[] two = merge(new ExtrapolateMerge(), sft, new float[][] {aligned}, ONE, Map.of("alpha", 0.5));
        for (int i = 0; i < sft.length; i++) {
            assertEquals(2 * (one[i] - aligned[i]), two[i] - aligned[i], 1e-5f, "element " + i);
        }
    }
}
