package io.modelmerge.engine.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.compute.ComputeBackend;
import io.modelmerge.engine.compute.Matrix;
import io.modelmerge.engine.delta.Bits;
import java.util.Random;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** Bit packing, and the low-rank factoring: exact at the matrix's rank, off by its tail energy below it. */
class DeltaFactorsTest {

    /** Signs packed by the kernel read back at every length, the last byte's unused bits zero; zeros read as +. */
    @Test
    void signBitsRoundTripAtEveryLengthAndAnAllZeroDeltaReadsPositive() {
        Random random = new Random(1);
        for (int n = 1; n <= 67; n++) {
            float[] d = new float[n];
            for (int i = 0; i < n; i++) {
                d[i] = n % 5 == 0 ? 0f : (float) random.nextGaussian();
            }
            byte[] packed = new byte[(int) Bits.bytesFor(n)];
            io.modelmerge.engine.kernel.DeltaKernels.signs(d, 0, n, 1f, packed, new float[n]);
            for (int i = 0; i < n; i++) {
                assertEquals(d[i] >= 0, Bits.get(java.lang.foreign.MemorySegment.ofArray(packed), i), n + " bits, bit " + i);
            }
            if (n % 8 != 0) {
                assertEquals(0, (packed[packed.length - 1] & 0xFF) >>> (n % 8), "padding of " + n + " bits");
            }
        }
    }

    /** U·diag(s)·Vᵀ with orthonormal U, V from the QR of Gaussian matrices, so its singular values are s. */
    private static Matrix withSingularValues(int rows, int cols, double[] s, long seed) {
        ComputeBackend cpu = ComputeBackend.cpu();
        Random random = new Random(seed);
        Matrix u = cpu.qr(gaussian(rows, s.length, random)).q();
        Matrix v = cpu.qr(gaussian(cols, s.length, random)).q();
        float[] us = u.values().clone();
        for (int r = 0; r < rows; r++) {
            for (int k = 0; k < s.length; k++) {
                us[r * s.length + k] *= (float) s[k];
            }
        }
        return cpu.multiply(new Matrix(rows, s.length, us), v.transpose());
    }

    private static Matrix gaussian(int rows, int cols, Random random) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) random.nextGaussian();
        }
        return new Matrix(rows, cols, v);
    }

    private static double squaredError(Matrix m, DeltaLowRank.Factors f) {
        double e = 0;
        for (int o = 0; o < f.out(); o++) {
            for (int i = 0; i < f.in(); i++) {
                double p = 0;
                for (int k = 0; k < f.rank(); k++) {
                    p += (double) f.b()[o * f.rank() + k] * f.a()[k * f.in() + i];
                }
                e += Math.pow(p - m.values()[o * f.in() + i], 2);
            }
        }
        return e;
    }

    @Test
    void aRankRDeltaIsRecoveredAndATruncatedOneMissesByItsTailEnergy() throws Exception {
        double[] s = {9, 7, 5, 3, 2, 1.5, 1, 0.5, 0.25, 0.125};
        Matrix m = withSingularValues(300, 200, s, 4); // sides far above the sketch: the randomized path
        DeltaLowRank.Spec all = new DeltaLowRank.Spec(10, 0, 0, Pattern.compile(""), Pattern.compile(""));
        DeltaLowRank.Factors exact = DeltaLowRank.factor("m", m, all, ComputeBackend.cpu(), "m");
        assertTrue(squaredError(m, exact) < 1e-8, "rank-10 matrix at rank 10: " + squaredError(m, exact));
        DeltaLowRank.Factors four = DeltaLowRank.factor("m", m,
                new DeltaLowRank.Spec(4, 0, 0, Pattern.compile(""), Pattern.compile("")), ComputeBackend.cpu(), "m");
        double tail = 0;
        for (int k = 4; k < s.length; k++) {
            tail += s[k] * s[k];
        }
        assertEquals(tail, squaredError(m, four), 1e-3 * tail);
        // an energy target of 95%: Σ s² = 171.33, the first four hold 164: rank 4 (three hold 155 < 162.8)
        DeltaLowRank.Factors energy = DeltaLowRank.factor("m", m,
                new DeltaLowRank.Spec(10, 0, 0.95, Pattern.compile(""), Pattern.compile("")), ComputeBackend.cpu(), "m");
        assertEquals(4, energy.rank());
        DeltaLowRank.Factors epsilon = DeltaLowRank.factor("m", m,
                new DeltaLowRank.Spec(10, 0.9, 0, Pattern.compile(""), Pattern.compile("")), ComputeBackend.cpu(), "m");
        assertEquals(7, epsilon.rank());
    }
}
