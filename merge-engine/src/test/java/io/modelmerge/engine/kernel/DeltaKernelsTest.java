package io.modelmerge.engine.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.modelmerge.storage.safetensors.DType;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
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

    /** What {@link DeltaKernels#sparse} must give, one element at a time in double. */
    private static void checkSparse(float[] b, float[] f, int n, long offset, DeltaKernels.Keep keep, DType dtype,
                                    java.util.function.IntPredicate rule, float scale) {
        byte[] bits = new byte[(n + 7) / 8];
        float[] values = new float[n + 16];
        double[] sums = new double[4];
        DeltaKernels.Keep again = keep instanceof DeltaKernels.Keep.Largest largest
                ? new DeltaKernels.Keep.Largest(largest.threshold(), largest.tiesLeft().clone()) : keep;
        int kept = DeltaKernels.sparse(b, f, n, offset, keep, dtype, bits, values, sums);
        double[] storedSums = dtype == DType.BF16 ? storedBf16Sums(b, f, n, offset, again, keep, bits, values, kept)
                : null;
        int count = 0;
        double[] want = new double[4];
        String where = keep + " " + dtype + " " + n;
        for (int i = 0; i < n; i++) {
            float d = f[i] - b[i];
            boolean kept_ = rule.test(i);
            assertEquals(kept_, bit(bits, i), where + " at " + i);
            float s = kept_ ? d * scale : 0f;
            if (kept_) {
                assertEquals(s, values[count++], where + " kept value " + count);
            }
            double t = Floats.round(f[i], dtype);
            double r = Floats.round(b[i] + s, dtype);
            want[0] += t * t;
            want[1] += (r - t) * (r - t);
            want[2] += (double) d * d;
            want[3] += ((double) s - d) * ((double) s - d);
        }
        assertEquals(count, kept, where);
        for (int k = 0; k < 4; k++) {
            assertEquals(want[k], sums[k], 1e-5 * Math.max(1, want[k]), where + " error sum " + k);
            if (storedSums != null) {
                assertEquals(want[k], storedSums[k], 1e-5 * Math.max(1, want[k]), "stored BF16 " + where + " error sum "
                        + k);
            }
        }
    }

    /**
     * {@link DeltaKernels#sparseBf16} on the stored bytes of BF16 b and f gives what {@link DeltaKernels#sparse}
     * gave on their floats: the same bits, values and count, and the same ties left. Returns its error sums, which
     * the caller holds to the exact ones as it does the float kernel's (both add F32 lanes, in an order that may
     * change with the moment the JIT compiles each loop, so the two may differ in their last bits).
     */
    private static double[] storedBf16Sums(float[] b, float[] f, int n, long offset, DeltaKernels.Keep keep,
                                           DeltaKernels.Keep asFloats, byte[] bits, float[] values, int kept) {
        MemorySegment storedB = MemorySegment.ofArray(new byte[2 * n]);
        MemorySegment storedF = MemorySegment.ofArray(new byte[2 * n]);
        Floats.narrow(b, n, storedB, DType.BF16, 0);
        Floats.narrow(f, n, storedF, DType.BF16, 0);
        byte[] storedBits = new byte[bits.length];
        float[] storedValues = new float[values.length];
        double[] storedSums = new double[4];
        String where = "stored BF16 " + keep + " " + n;
        assertEquals(kept, DeltaKernels.sparseBf16(storedB, storedF, n, offset, keep, storedBits, storedValues,
                storedSums), where);
        assertArrayEquals(bits, storedBits, where);
        assertArrayEquals(Arrays.copyOf(values, kept), Arrays.copyOf(storedValues, kept), where);
        if (keep instanceof DeltaKernels.Keep.Largest largest) {
            assertEquals(((DeltaKernels.Keep.Largest) asFloats).tiesLeft()[0], largest.tiesLeft()[0], where);
        }
        return storedSums;
    }

    @Test
    void sparseSelectionMatchesItsScalarRules() {
        Random random = new Random(2);
        for (DType dtype : new DType[] {DType.F32, DType.BF16, DType.F16}) {
            for (int n : LENGTHS) {
                float[] b = values(random, n);
                float[] f = values(random, n);
                for (int i = 0; i < n; i++) {
                    b[i] = Floats.round(b[i], dtype);
                    // every 11th difference is a multiple of 0.25, so ties with the threshold are common
                    f[i] = i % 11 == 0 ? b[i] + 0.25f * (random.nextInt(5) - 2) : Floats.round(f[i], dtype);
                }
                int seed = 12345;
                int threshold = RandomMask.threshold(0.3);
                checkSparse(b, f, n, 1 << 20, new DeltaKernels.Keep.Random(seed, threshold, 2.5f), dtype,
                        i -> RandomMask.keeps(seed, (1 << 20) + i, threshold), 2.5f);
                long[] tiesLeft = {2};
                checkSparse(b, f, n, 0, new DeltaKernels.Keep.Largest(0.25f, new long[] {2}), dtype, i -> {
                    float m = Math.abs(f[i] - b[i]);
                    return m > 0.25f || m == 0.25f && tiesLeft[0]-- > 0;
                }, 1f);
                checkSparse(b, f, n, 0, new DeltaKernels.Keep.Largest(0.25f, new long[] {Long.MAX_VALUE}), dtype,
                        i -> Math.abs(f[i] - b[i]) >= 0.25f, 1f);
            }
        }
    }

    @Test
    void signsMatchTheirScalarRule() {
        Random random = new Random(5);
        for (int n : LENGTHS) {
            float[] d = values(random, n);
            float[] stored = new float[n];
            byte[] bits;
            d[0] = -0f;
            for (int from : new int[] {0, Math.min(3, n), Math.min(8, n)}) {
                bits = new byte[(n + 7) / 8];
                Arrays.fill(stored, 7f);
                DeltaKernels.signs(d, from, n, 0.5f, bits, stored);
                for (int i = 0; i < n; i++) {
                    boolean positive = Float.floatToRawIntBits(d[i]) >= 0;
                    assertEquals(i >= from && positive, bit(bits, i), "sign " + n + " from " + from + " at " + i);
                    assertEquals(i < from ? 7f : positive ? 0.5f : -0.5f, stored[i], "scaled sign at " + i);
                }
            }
        }
    }

    @Test
    void absoluteSumsDoNotDependOnHowTheRangeIsCut() {
        Random random = new Random(4);
        float[] d = values(random, 4099);
        double exact = 0;
        for (float v : d) {
            exact += Math.abs(v);
        }
        double[] whole = new double[DeltaKernels.SUM_LANES];
        DeltaKernels.absSum(d, 0, d.length, whole);
        double wholeSum = DeltaKernels.total(whole);
        assertEquals(exact, wholeSum, 1e-9 * exact);
        for (int cut : new int[] {8, 64, 1000, 4096}) {
            double[] pieces = new double[DeltaKernels.SUM_LANES];
            for (int from = 0; from < d.length; from += cut) {
                DeltaKernels.absSum(d, from, Math.min(d.length, from + cut), pieces);
            }
            assertEquals(Double.doubleToRawLongBits(wholeSum), Double.doubleToRawLongBits(DeltaKernels.total(pieces)),
                    "cut every " + cut);
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
