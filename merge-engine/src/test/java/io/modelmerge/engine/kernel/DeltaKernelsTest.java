package io.modelmerge.engine.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.modelmerge.storage.safetensors.DType;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The delta kernels against their rules written out one element at a time, at lengths across vector boundaries. */
class DeltaKernelsTest {
    private static final int[] LENGTHS = {1, 7, 8, 15, 16, 17, 31, 33, 64, 80, 1000, 4099};

    private static float[] values(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = i % 11 == 0 ? 0.25f * (random.nextInt(5) - 2) : (float) random.nextGaussian();
        }
        return v;
    }

    private static boolean bit(byte[] bits, int i) {
        return (bits[i >>> 3] >>> (i & 7) & 1) != 0;
    }

    @Test
    void deltaAndItsMissesMatchTheScalarRule() {
        Random random = new Random(1);
        for (DType dtype : new DType[] {DType.F32, DType.BF16, DType.F16}) {
            for (int n : LENGTHS) {
                float[] b = values(random, n);
                float[] f = values(random, n);
                for (int i = 0; i < n; i++) {
                    b[i] = Floats.round(b[i] * 1e3f, dtype);
                    f[i] = Floats.round(f[i] * (i % 3 == 0 ? 1e-6f : 1f), dtype);
                }
                float[] d = new float[n];
                int[] misses = new int[n];
                int count = DeltaKernels.delta(b, f, d, n, dtype, misses);
                int expected = 0;
                for (int i = 0; i < n; i++) {
                    assertEquals(f[i] - b[i], d[i]);
                    if (Float.floatToRawIntBits(Floats.round(b[i] + (f[i] - b[i]), dtype))
                            != Float.floatToRawIntBits(Floats.round(f[i], dtype))) {
                        assertEquals(i, misses[expected++], dtype + " " + n);
                    }
                }
                assertEquals(expected, count, dtype + " " + n);
            }
        }
    }

    @Test
    void dareMagnitudeAndSignsMatchTheirScalarRules() {
        Random random = new Random(2);
        for (int n : LENGTHS) {
            float[] d = values(random, n);
            float[] stored = new float[n];
            byte[] bits = new byte[(n + 7) / 8];
            int seed = 12345;
            int threshold = RandomMask.threshold(0.3);
            int kept = DeltaKernels.dare(d, n, 1 << 20, seed, threshold, 2.5f, stored, bits);
            int count = 0;
            for (int i = 0; i < n; i++) {
                boolean keep = RandomMask.keeps(seed, (1 << 20) + i, threshold);
                assertEquals(keep ? d[i] * 2.5f : 0f, stored[i]);
                assertEquals(keep, bit(bits, i));
                count += keep ? 1 : 0;
            }
            assertEquals(count, kept);

            bits = new byte[(n + 7) / 8];
            long[] ties = {2};
            kept = DeltaKernels.magnitude(d, n, 0.25f, ties, stored, bits);
            long tiesLeft = 2;
            count = 0;
            for (int i = 0; i < n; i++) {
                float m = Math.abs(d[i]);
                boolean keep = m > 0.25f || m == 0.25f && tiesLeft-- > 0;
                assertEquals(keep ? d[i] : 0f, stored[i]);
                assertEquals(keep, bit(bits, i), "magnitude " + n + " at " + i);
                count += keep ? 1 : 0;
            }
            assertEquals(count, kept);

            bits = new byte[(n + 7) / 8];
            d[0] = -0f;
            DeltaKernels.signs(d, n, bits);
            for (int i = 0; i < n; i++) {
                assertEquals(Float.floatToRawIntBits(d[i]) >= 0, bit(bits, i), "sign " + n + " at " + i);
            }
        }
    }

    @Test
    void errorSumsAgreeWithDoubleArithmetic() {
        Random random = new Random(3);
        for (DType dtype : new DType[] {DType.F32, DType.BF16, DType.F16}) {
            for (int n : LENGTHS) {
                float[] b = values(random, n);
                float[] f = values(random, n);
                float[] d = new float[n];
                float[] s = new float[n];
                for (int i = 0; i < n; i++) {
                    d[i] = f[i] - b[i];
                    s[i] = d[i] * 0.9f;
                }
                double[] sums = new double[4];
                DeltaKernels.errors(b, f, d, s, n, dtype, sums);
                double[] want = new double[4];
                for (int i = 0; i < n; i++) {
                    double t = Floats.round(f[i], dtype);
                    double r = Floats.round(b[i] + s[i], dtype);
                    want[0] += t * t;
                    want[1] += (r - t) * (r - t);
                    want[2] += (double) d[i] * d[i];
                    want[3] += ((double) s[i] - d[i]) * ((double) s[i] - d[i]);
                }
                for (int k = 0; k < 4; k++) {
                    assertEquals(want[k], sums[k], 1e-5 * Math.max(1, want[k]), dtype + " " + n + " sum " + k);
                }
            }
        }
    }
}
