package io.modelmerge.engine.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The methods' kernels against their math written plainly, one element at a time, at every length from 1 to
 * a few vectors past a run (so full vectors, masked tails and run boundaries are all met), on data with zeros,
 * ties and both signs. Elementwise kernels use the same IEEE operations as the reference and must agree to the
 * bit; reductions and exp/tanh agree to a stated tolerance.
 */
class MethodKernelsTest {
    private static final int MODELS = 3;
    private static final int[] LENGTHS = lengths();

    private static int[] lengths() {
        int[] lengths = new int[80 + 6];
        for (int i = 0; i < 80; i++) {
            lengths[i] = i + 1;
        }
        int[] more = {1023, 1024, 1025, 2047, 2049, 4100};
        System.arraycopy(more, 0, lengths, 80, more.length);
        return lengths;
    }

    /** Values with exact zeros, repeated magnitudes and both signs. */
    private static float[] values(Random random, int length) {
        float[] v = new float[length];
        for (int i = 0; i < length; i++) {
            v[i] = switch (random.nextInt(8)) {
                case 0 -> 0f;
                case 1 -> 0.25f;
                case 2 -> -0.25f;
                default -> (float) random.nextGaussian();
            };
        }
        return v;
    }

    private static float[][] models(Random random, int length) {
        float[][] x = new float[MODELS][];
        for (int m = 0; m < MODELS; m++) {
            x[m] = values(random, length);
        }
        return x;
    }

    @Test
    void thinningKeepsWhatItsRuleKeepsAndScales() {
        Random random = new Random(1);
        for (int length : LENGTHS) {
            float[] x = values(random, length);
            float[] base = values(random, length);
            int seed = random.nextInt();
            int threshold24 = RandomMask.threshold(0.4);
            long offset = random.nextInt(1 << 20);
            TaskVectors.Thinning[] rules = {new TaskVectors.Thinning.None(), new TaskVectors.Thinning.Magnitude(0.25f),
                    new TaskVectors.Thinning.Random(seed, threshold24, offset)};
            for (TaskVectors.Thinning rule : rules) {
                float[] actual = x.clone();
                TaskVectors.thin(actual, base, rule, 1.5f, length);
                float[] expected = new float[length];
                for (int i = 0; i < length; i++) {
                    float d = x[i] - base[i];
                    boolean keep = switch (rule) {
                        case TaskVectors.Thinning.None none -> true;
                        case TaskVectors.Thinning.Magnitude m -> Math.abs(d) >= m.threshold();
                        case TaskVectors.Thinning.Random r -> RandomMask.keeps(seed, offset + i, threshold24);
                    };
                    expected[i] = keep ? d * 1.5f : 0f;
                }
                assertArrayEquals(expected, actual, rule + " length " + length);
            }
        }
    }

    @Test
    void deltaKeepBandAndVariance() {
        Random random = new Random(2);
        for (int length : LENGTHS) {
            float[][] x = models(random, length);
            float[] base = values(random, length);
            float[] delta = new float[length];
            TaskVectors.delta(x[0], base, delta, length);
            float[] band = x[1].clone();
            TaskVectors.keepBand(band, base, 0.25f, 1f, 1f, length);
            int from = length / 3;
            float[] variance = new float[length - from];
            TaskVectors.variance(x, MODELS, base, from, length - from, variance);
            float[] reversed = new float[length - from];
            TaskVectors.variance(new float[][] {x[2], x[0], x[1]}, MODELS, base, from, length - from, reversed);
            assertArrayEquals(variance, reversed, "the models' order does not matter");
            for (int i = 0; i < length; i++) {
                assertEquals(x[0][i] - base[i], delta[i]);
                float d = x[1][i] - base[i];
                assertEquals(Math.abs(d) >= 0.25f && Math.abs(d) < 1f ? d : 0f, band[i]);
            }
            for (int j = 0; j < variance.length; j++) {
                int i = from + j;
                float[] tau = new float[MODELS];
                for (int m = 0; m < MODELS; m++) {
                    tau[m] = x[m][i] - base[i];
                }
                java.util.Arrays.sort(tau); // summed in ascending order, whatever the models' order
                float mean = 0;
                for (float t : tau) {
                    mean += t;
                }
                mean /= MODELS;
                float sum = 0;
                for (float t : tau) {
                    float d = t - mean;
                    sum = Math.fma(d, d, sum);
                }
                assertEquals(sum / MODELS, variance[j], "length " + length + " element " + i);
            }
        }
    }

    @Test
    void l1SumsOfAllAndOfTheMaskedEntries() {
        Random random = new Random(3);
        for (int length : LENGTHS) {
            float[] x = values(random, length);
            float[] base = values(random, length);
            var mask = new TaskVectors.Thinning.Random(random.nextInt(), RandomMask.threshold(0.3), 77);
            int from = length / 4;
            double[] sums = {10, 20};
            TaskVectors.addL1(x, base, mask, from, length - from, sums, 0, 1);
            double all = 10;
            double kept = 20;
            for (int i = from; i < length; i++) {
                float d = Math.abs(x[i] - base[i]);
                all += d;
                kept += RandomMask.keeps(mask.seed(), 77 + i, mask.threshold24()) ? d : 0;
            }
            assertEquals(all, sums[0], 1e-5 * all, "length " + length);
            assertEquals(kept, sums[1], 1e-5 * kept, "length " + length);
        }
    }

    @Test
    void randomMaskLanesAreTheScalarMask() {
        Random random = new Random(4);
        int lanes = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length();
        for (int trial = 0; trial < 200; trial++) {
            int seed = random.nextInt();
            long index = random.nextInt(1 << 30);
            int threshold24 = RandomMask.threshold(random.nextDouble());
            long mask = RandomMask.keepBits(seed, index, threshold24, RandomMask.drawBuffer());
            for (int lane = 0; lane < lanes; lane++) {
                assertEquals(RandomMask.keeps(seed, index + lane, threshold24), (mask >>> lane & 1) == 1);
            }
            assertEquals(0, mask >>> lanes, "no bit past the last lane");
        }
    }

    /** DELLA's mask by rank, a vector at a time, against {@link RandomMask#keeps} with each rank's threshold. */
    @Test
    void aMaskByRankIsTheScalarMaskAtEachRanksThreshold() {
        Random random = new Random(6);
        for (int length : LENGTHS) {
            float[] x = values(random, length);
            int[] rank = new int[length];
            int[] thresholds = new int[length];
            float[] inverse = new float[length];
            for (int i = 0; i < length; i++) {
                rank[i] = i;
                double p = 0.2 + 0.6 * i / Math.max(1, length - 1);
                thresholds[i] = RandomMask.threshold(p);
                inverse[i] = (float) (1 / p);
            }
            for (int i = length - 1; i > 0; i--) {
                int j = random.nextInt(i + 1);
                int t = rank[i];
                rank[i] = rank[j];
                rank[j] = t;
            }
            int seed = random.nextInt();
            long index = (1L << 32) + random.nextInt(1 << 20); // past 2^32: the high word enters the draw
            for (float[] divide : new float[][] {null, inverse}) {
                float[] actual = new float[length + 3];
                System.arraycopy(x, 0, actual, 3, length);
                RandomMask.keepByRank(actual, 3, length, seed, index, rank, thresholds, divide);
                for (int i = 0; i < length; i++) {
                    float kept = divide == null ? x[i] : x[i] * inverse[rank[i]];
                    float expected = RandomMask.keeps(seed, index + i, thresholds[rank[i]]) ? kept : 0f;
                    assertEquals(expected, actual[3 + i], "element " + i + " of " + length);
                }
            }
        }
    }

    @Test
    void weightedSumsOntoABaseAndBlends() {
        Random random = new Random(5);
        float[] weights = {0.5f, -1.25f, 2f};
        for (int length : LENGTHS) {
            float[][] x = models(random, length);
            float[] base = values(random, length);
            float[] onto = new float[length];
            WeightedSums.onto(x, weights, 0.7f, base, onto, length);
            float[] blend = new float[length];
            WeightedSums.blend(x, 2, weights, base, 0.3f, blend, 0, length);
            float[] sum = new float[length];
            WeightedSums.weightedSum(x, weights, sum, length);
            float[] products = new float[length];
            WeightedSums.sumOfProducts(x, weights, 1.25f, products, length);
            for (int i = 0; i < length; i++) {
                float acc = 0;
                for (int m = 0; m < MODELS; m++) {
                    acc = Math.fma(x[m][i], weights[m], acc);
                }
                assertEquals(acc, sum[i]);
                // PyTorch's (w * x).sum(0) / w.sum(): products rounded, added in order, one division
                assertEquals((x[0][i] * weights[0] + x[1][i] * weights[1] + x[2][i] * weights[2]) / 1.25f, products[i]);
                assertEquals(Math.fma(acc, 0.7f, base[i]), onto[i]);
                float blended = Math.fma(x[1][i], weights[1], Math.fma(x[0][i], weights[0], base[i] * 0.3f));
                assertEquals(blended, blend[i]);
            }
        }
    }

    @Test
    void tiesElectsTheMajoritySignAndMergesTheAgreeingEntries() {
        Random random = new Random(6);
        float[] weights = {0.5f, 1f, 0.25f};
        for (int length : LENGTHS) {
            float[][] t = models(random, length);
            float[] base = values(random, length);
            for (boolean paper : new boolean[] {false, true}) {
                for (boolean normalize : new boolean[] {false, true}) {
                    float[] out = new float[length];
                    SignElection.ties(t, weights, paper, normalize, 0.9f, base, out, length);
                    for (int i = 0; i < length; i++) {
                        float vote = 0;
                        for (int m = 0; m < MODELS; m++) {
                            vote = paper ? vote + t[m][i] : Math.fma(t[m][i], weights[m], vote);
                        }
                        float mixed = 0;
                        float divisor = 0;
                        for (int m = 0; m < MODELS; m++) {
                            float weighted = t[m][i] * weights[m];
                            float judged = paper ? t[m][i] : weighted;
                            if (vote >= 0 ? judged > 0 : judged < 0) {
                                mixed += weighted;
                                divisor += paper ? 1f : weights[m];
                            }
                        }
                        float delta = normalize ? mixed / (divisor == 0 ? 1f : divisor) : mixed;
                        assertEquals(Math.fma(delta, 0.9f, base[i]), out[i], "paper " + paper + " element " + i);
                    }
                }
            }
        }
    }

    @Test
    void sceWeightedMeanOverSelectedAgreeingEntries() {
        Random random = new Random(7);
        float[] weights = {0.2f, 0.3f, 0.5f};
        for (int length : LENGTHS) {
            float[][] x = models(random, length);
            float[] base = values(random, length);
            float[] score = values(random, length);
            float[] out = new float[length];
            SignElection.weightedMean(x, MODELS, weights, base, score, 0.1f, out, length);
            for (int i = 0; i < length; i++) {
                float vote = 0;
                for (int m = 0; m < MODELS; m++) {
                    vote += x[m][i] - base[i];
                }
                float mixed = 0;
                float divisor = 0;
                for (int m = 0; m < MODELS; m++) {
                    float d = x[m][i] - base[i];
                    if (vote >= 0 ? d > 0 : d < 0) {
                        mixed += d * weights[m];
                        divisor += weights[m];
                    }
                }
                float expected = score[i] >= 0.1f ? base[i] + mixed / Math.max(divisor, 1e-6f) : base[i] + 0f;
                assertEquals(expected, out[i], "element " + i);
            }
        }
    }

    @Test
    void gramProductsAreTheDotProductsOfTheTaskVectors() {
        Random random = new Random(8);
        for (int length : LENGTHS) {
            float[][] x = models(random, length);
            float[] base = values(random, length);
            for (float[] b : new float[][] {base, null}) {
                double[] sums = new double[MODELS * MODELS];
                GramProducts.add(x, MODELS, b, 0, length, sums);
                for (int p = 0; p < MODELS; p++) {
                    for (int q = p; q < MODELS; q++) {
                        double dot = 0;
                        double scale = 0;
                        for (int i = 0; i < length; i++) {
                            double vp = GramProducts.vector(x[p], b, i);
                            double vq = GramProducts.vector(x[q], b, i);
                            dot += vp * vq;
                            scale += Math.abs(vp * vq);
                        }
                        assertEquals(dot, sums[p * MODELS + q], 1e-6 * scale + 1e-12, "length " + length);
                    }
                }
            }
        }
    }

    @Test
    void fisherAverageWeighsEachModelByItsFisher() {
        Random random = new Random(9);
        float[] lambda = {0.25f, 0.25f, 0.5f};
        float[] coefficient = {1f, 2f, 0.5f};
        for (int length : LENGTHS) {
            float[][] x = new float[2 * MODELS][];
            for (int m = 0; m < MODELS; m++) {
                x[m] = values(random, length);
                x[MODELS + m] = values(random, length);
                for (int i = 0; i < length; i++) {
                    x[MODELS + m][i] = Math.abs(x[MODELS + m][i]); // a Fisher is a mean of squares
                }
            }
            for (boolean firstFloored : new boolean[] {false, true}) {
                float[] out = new float[length];
                FisherAverage.of(x, MODELS, lambda, coefficient, true, 1e-3f, firstFloored, out, length);
                for (int i = 0; i < length; i++) {
                    float average = 0;
                    float numerator = 0;
                    float denominator = 0;
                    for (int m = 0; m < MODELS; m++) {
                        average = Math.fma(x[m][i], lambda[m], average);
                        float f = x[MODELS + m][i];
                        f = firstFloored ? (m == 0 ? Math.max(f, 1e-3f) : f) : f + 1e-3f;
                        float c = f * coefficient[m];
                        numerator = Math.fma(c, x[m][i], numerator);
                        denominator += c;
                    }
                    assertEquals(denominator > 0 ? numerator / denominator : average, out[i], "element " + i);
                }
            }
        }
    }

    @Test
    void competitionBalanceBetasAndMerge() {
        Random random = new Random(10);
        float[] low = {0.01f, 0.02f, 0.3f};
        float[] high = {1.5f, 2f, 0.3f}; // the last task's clip range is a single value
        float[] threshold = {0.05f, -0.1f, 0.2f};
        float[] max = {0.9f, 0.8f, 0.2f}; // and its kept β range too
        for (int length : LENGTHS) {
            float[][] x = models(random, length);
            float[] base = values(random, length);
            float[][] beta = CompetitionBalance.betas(x, MODELS, base, low, high, length);
            float[] out = new float[length];
            CompetitionBalance.merge(x, MODELS, base, beta, low, high, threshold, max, 0.8f, out, length);
            for (int i = 0; i < length; i++) {
                float sum = 0;
                for (int m = 0; m < MODELS; m++) {
                    sum += x[m][i] - base[i];
                }
                double mixed = 0;
                double scales = 0;
                for (int m = 0; m < MODELS; m++) {
                    float tau = x[m][i] - base[i];
                    double clamped = Math.min(Math.max(Math.abs(tau), low[m]), high[m]);
                    double minmax = high[m] > low[m] ? (clamped - low[m]) / (high[m] - low[m]) : 0;
                    double expected = Math.exp(MODELS * minmax * minmax) * Math.tanh((double) tau * sum);
                    assertEquals(expected, beta[m][i], 3e-6 * Math.abs(expected) + 1e-7, "β element " + i);
                    double scale = max[m] > threshold[m]
                            ? (Math.max(beta[m][i], threshold[m]) - threshold[m]) / (max[m] - threshold[m])
                            : beta[m][i] >= threshold[m] ? 1 : 0;
                    mixed += scale * Math.signum(tau) * clamped;
                    scales += scale;
                }
                double expected = base[i] + 0.8 * mixed / Math.max(scales, 1e-12);
                assertTrue(Math.abs(expected - out[i]) <= 1e-5 * (1 + Math.abs(expected)),
                        "element " + i + ": " + expected + " vs " + out[i]);
            }
        }
    }
}
