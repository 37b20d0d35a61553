package io.modelmerge.engine.method;

import static io.modelmerge.engine.method.MethodHarness.merge;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Relations between methods that must hold on any data, checked on random tensors. */
class MergeInvariantsTest {
    private static final int N = 5003; // not a multiple of any vector width or block size
    private final Random random = new Random(11);
    private final float[] base = gaussian(1.0f);
    private final float[][] models = {perturbed(), perturbed(), perturbed()};

    private float[] gaussian(float scale) {
        float[] v = new float[N];
        for (int i = 0; i < N; i++) {
            v[i] = (float) random.nextGaussian() * scale;
        }
        return v;
    }

    private float[] perturbed() {
        float[] delta = gaussian(0.1f);
        for (int i = 0; i < N; i++) {
            delta[i] += base[i];
        }
        return delta;
    }

    private static List<Map<String, Object>> params(double density, double... weights) {
        return java.util.Arrays.stream(weights).mapToObj(w -> Map.<String, Object>of("weight", w, "density", density)).toList();
    }

    @Test
    void tiesWithDensityOneAndOneModelIsTaskArithmetic() {
        float[][] one = {models[0]};
        float[] ties = merge(new TiesMerge(), base, one, params(1.0, 1.0), Map.of());
        float[] ta = merge(new TaskArithmeticMerge(false), base, one, params(1.0, 1.0), Map.of());
        assertArrayEquals(ta, ties, 1e-6f);
    }

    @Test
    void linearWithEqualWeightsIsTheMean() {
        float[] out = merge(new LinearMerge(), null, models, params(1.0, 2, 2, 2), Map.of());
        for (int i = 0; i < N; i++) {
            assertEquals((models[0][i] + models[1][i] + models[2][i]) / 3, out[i], 1e-6f);
        }
    }

    @Test
    void dareWithDensityOneIsItsNonDareTwin() {
        assertArrayEquals(merge(new TaskArithmeticMerge(false), base, models, params(1.0, 0.3, 0.5, 0.2), Map.of()),
                merge(new DareLinearMerge(), base, models, params(1.0, 0.3, 0.5, 0.2), Map.of()), 1e-6f);
        assertArrayEquals(merge(new TiesMerge(), base, models, params(1.0, 0.3, 0.5, 0.2), Map.of("normalize", false)),
                merge(new DareTiesMerge(), base, models, params(1.0, 0.3, 0.5, 0.2), Map.of()), 1e-6f);
    }

    @Test
    void dareAveragedOverManySeedsApproachesTheUndroppedResult() {
        float[] undropped = merge(new TaskArithmeticMerge(false), base, models, params(1.0, 1, 1, 1), Map.of());
        double[] mean = new double[N];
        int seeds = 400;
        for (int s = 0; s < seeds; s++) {
            float[] out = merge(new DareLinearMerge(), base, models, params(0.5, 1, 1, 1),
                    Map.of("rescale", "inverse_density"), s, 512, 2);
            for (int i = 0; i < N; i++) {
                mean[i] += out[i] / (double) seeds;
            }
        }
        // Entry i of one DARE draw has variance Σ_m δ_m² (1/p − 1); its mean over the seeds, that over seeds.
        // Standardised, the deviations must look like N(0, 1): none beyond 5.5σ, mean square near 1.
        double worst = 0;
        double meanSquare = 0;
        for (int i = 0; i < N; i++) {
            double variance = 0;
            for (float[] model : models) {
                double delta = model[i] - base[i];
                variance += delta * delta * (1 / 0.5 - 1);
            }
            double z = (mean[i] - undropped[i]) / Math.sqrt(variance / seeds);
            worst = Math.max(worst, Math.abs(z));
            meanSquare += z * z / N;
        }
        assertTrue(worst < 5.5, "worst deviation " + worst + " sigma");
        assertEquals(1.0, meanSquare, 0.1, "mean squared z");
    }

    @Test
    void dareKeepsAboutDensityOfEachTaskVectorAndL1RescaleKeepsItsNorm() {
        float[][] one = {models[0]};
        float[] out = merge(new DareLinearMerge(), base, one, params(0.3, 1.0), Map.of());
        int kept = 0;
        double before = 0;
        double after = 0;
        for (int i = 0; i < N; i++) {
            float delta = models[0][i] - base[i];
            float merged = out[i] - base[i];
            before += Math.abs(delta);
            after += Math.abs(merged);
            if (merged != 0) {
                kept++;
            }
        }
        assertEquals(0.3, kept / (double) N, 0.03);
        assertEquals(before, after, before * 1e-4);
        float[] inverse = merge(new DareLinearMerge(), base, one, params(0.3, 1.0), Map.of("rescale", "inverse_density"));
        for (int i = 0; i < N; i++) {
            float merged = inverse[i] - base[i];
            float delta = models[0][i] - base[i];
            assertTrue(merged == 0 || Math.abs(merged - delta / 0.3f) < 1e-4f, "entry " + i);
        }
    }

    @Test
    void resultsDoNotDependOnWorkersAndBlockSizeOnlyRoundsDifferently() {
        for (MergeMethod method : List.of(new TiesMerge(), new DareTiesMerge(), new DareLinearMerge(), new TaskArithmeticMerge(true))) {
            float[] one = merge(method, base, models, params(0.4, 1, 0.5, 0.7), Map.of(), 9, 97, 1);
            float[] three = merge(method, base, models, params(0.4, 1, 0.5, 0.7), Map.of(), 9, 97, 3);
            assertArrayEquals(one, three, 0f, method.name() + ": bit-identical whatever the workers");
            float[] bigBlocks = merge(method, base, models, params(0.4, 1, 0.5, 0.7), Map.of(), 9, 4096, 2);
            assertArrayEquals(one, bigBlocks, 1e-6f, method.name());
        }
    }

    @Test
    void theSeedChangesDareButNotTies() {
        float[] dare1 = merge(new DareTiesMerge(), base, models, params(0.5, 1, 1, 1), Map.of(), 1, 512, 2);
        float[] dare2 = merge(new DareTiesMerge(), base, models, params(0.5, 1, 1, 1), Map.of(), 2, 512, 2);
        assertNotEquals(java.util.Arrays.hashCode(dare1), java.util.Arrays.hashCode(dare2));
        assertArrayEquals(merge(new TiesMerge(), base, models, params(0.5, 1, 1, 1), Map.of(), 1, 512, 2),
                merge(new TiesMerge(), base, models, params(0.5, 1, 1, 1), Map.of(), 2, 512, 2), 0f);
    }

    @Test
    void tiesKeepsTheTopDensityOfEachTaskVectorByMagnitude() {
        float[][] one = {models[1]};
        float[] out = merge(new TiesMerge(), base, one, params(0.2, 1.0), Map.of());
        float[] magnitudes = new float[N];
        for (int i = 0; i < N; i++) {
            magnitudes[i] = Math.abs(models[1][i] - base[i]);
        }
        float[] sorted = magnitudes.clone();
        java.util.Arrays.sort(sorted);
        float threshold = sorted[N - (int) Math.floor(0.2 * N)];
        int kept = 0;
        for (int i = 0; i < N; i++) {
            boolean expectKept = magnitudes[i] >= threshold;
            assertEquals(expectKept, out[i] != base[i], "entry " + i);
            kept += expectKept ? 1 : 0;
        }
        assertEquals((int) Math.floor(0.2 * N), kept);
    }

    /** Keeps-set of TIES on one model must be exactly the top floor(density·n) by |δ| (values are distinct). */
    private static void assertKeepsExactlyTheTopK(float[] base, float[] model, double density, int blockSize) {
        int n = base.length;
        float[] out = merge(new TiesMerge(), base, new float[][] {model},
                List.of(Map.<String, Object>of("weight", 1.0, "density", density)), Map.of(), 1, blockSize, 2);
        float[] magnitudes = new float[n];
        for (int i = 0; i < n; i++) {
            magnitudes[i] = Math.abs(model[i] - base[i]);
        }
        float[] sorted = magnitudes.clone();
        java.util.Arrays.sort(sorted);
        int k = (int) Math.floor(density * n);
        float threshold = sorted[n - k];
        int kept = 0;
        for (int i = 0; i < n; i++) {
            boolean expected = magnitudes[i] >= threshold;
            if (expected != (out[i] != base[i])) {
                throw new AssertionError("entry " + i + ": |δ| " + magnitudes[i] + ", threshold " + threshold);
            }
            kept += expected ? 1 : 0;
        }
        assertEquals(k, kept);
    }

    @Test
    void largeTensorsSampleForABracketAndStayExact() {
        int n = (1 << 22) + 5; // large enough to be sampled one block in 16
        Random r = new Random(21);
        float[] b = new float[n];
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            b[i] = (float) r.nextGaussian();
            x[i] = b[i] + (float) (r.nextGaussian() * (1 + (i / 100_000) % 7)); // scales vary along the tensor
        }
        assertKeepsExactlyTheTopK(b, x, 0.3, 4096);
    }

    @Test
    void aMisleadingSampleFallsBackToTheExactSelection() {
        int n = 1 << 22;
        int blockSize = 4096;
        Random r = new Random(22);
        float[] b = new float[n];
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            boolean sampled = (i / blockSize) % 16 == 0; // the blocks the first pass reads
            x[i] = b[i] + (float) (r.nextGaussian() * (sampled ? 1e-6 : 1.0));
        }
        assertKeepsExactlyTheTopK(b, x, 0.5, blockSize);
    }
}
