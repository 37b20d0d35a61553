package io.modelmerge.engine.compute;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Every operation of the CPU backend (Vector API, ND4J) against the plain scalar reference on the same data.
 * Tolerances: element-wise results within a few ulp (exp 2, tanh 3, sums 1e-6 of Σ|wᵢxᵢ|); dense results
 * within 1e-5 of the matrix's largest entry (F32 products of length ≤ 300), and factorisations compared
 * through what they must reproduce, since QR and SVD factors are unique only up to signs.
 */
class ComputeBackendTest {
    private static final ComputeBackend CPU = ComputeBackend.cpu();
    private static final ComputeBackend REFERENCE = new ScalarBackend();
    private static final Random RANDOM = new Random(17);
    /** Lengths that leave vector tails of every size (up to 16 lanes). */
    private static final int[] LENGTHS = {1, 7, 16, 31, 1000};

    private static float[] gaussian(int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (RANDOM.nextGaussian() * scale);
        }
        return x;
    }

    private static Matrix matrix(int rows, int columns) {
        return new Matrix(rows, columns, gaussian(rows * columns, 1));
    }

    private static float ulps(float expected, float actual) {
        return Math.abs(expected - actual) / Math.ulp(expected);
    }

    @Test
    void expAndTanhAgreeWithinAFewUlp() {
        for (int n : LENGTHS) {
            float[] x = gaussian(n, 8);
            float[] cpu = new float[n];
            float[] ref = new float[n];
            CPU.exp(x, cpu, n);
            REFERENCE.exp(x, ref, n);
            for (int i = 0; i < n; i++) {
                assertTrue(ulps(ref[i], cpu[i]) <= 2, "exp(" + x[i] + "): " + cpu[i] + " vs " + ref[i]);
            }
            CPU.tanh(x, cpu, n);
            REFERENCE.tanh(x, ref, n);
            for (int i = 0; i < n; i++) {
                assertTrue(ulps(ref[i], cpu[i]) <= 3, "tanh(" + x[i] + "): " + cpu[i] + " vs " + ref[i]);
            }
        }
    }

    @Test
    void weightedSumsAndScaledAdditionsAgree() {
        for (int n : LENGTHS) {
            float[][] x = {gaussian(n, 1), gaussian(n, 1), gaussian(n, 1)};
            float[] w = {0.5f, -1.25f, 2f};
            float[] cpu = new float[n];
            float[] ref = new float[n];
            CPU.weightedSum(x, w, cpu, n);
            REFERENCE.weightedSum(x, w, ref, n);
            for (int i = 0; i < n; i++) {
                double scale = Math.abs(w[0] * x[0][i]) + Math.abs(w[1] * x[1][i]) + Math.abs(w[2] * x[2][i]);
                assertEquals(ref[i], cpu[i], 1e-6 * scale + Float.MIN_NORMAL, "element " + i + " of " + n);
            }
            float[] y1 = gaussian(n, 1);
            float[] y2 = y1.clone();
            CPU.addScaled(y1, 0.3f, x[0], n);
            REFERENCE.addScaled(y2, 0.3f, x[0], n);
            // both round the product, then the sum: the same bits
            assertEquals(java.util.Arrays.toString(y2), java.util.Arrays.toString(y1));
        }
    }

    @Test
    void productsAgree() {
        for (int[] shape : new int[][] {{1, 1, 1}, {3, 5, 2}, {64, 300, 17}, {128, 8, 96}}) {
            Matrix a = matrix(shape[0], shape[1]);
            Matrix b = matrix(shape[1], shape[2]);
            assertClose(REFERENCE.multiply(a, b), CPU.multiply(a, b), 1e-5);
        }
    }

    @Test
    void qrFactorsReproduceTheMatrixWithOrthonormalQAndTheSameTriangle() {
        for (int[] shape : new int[][] {{1, 1}, {5, 3}, {40, 40}, {300, 12}}) {
            Matrix a = matrix(shape[0], shape[1]);
            for (ComputeBackend backend : new ComputeBackend[] {CPU, REFERENCE}) {
                ComputeBackend.QR qr = backend.qr(a);
                assertClose(a, REFERENCE.multiply(qr.q(), qr.r()), 1e-5);
                assertClose(identity(shape[1]), REFERENCE.multiply(qr.q().transpose(), qr.q()), 1e-5);
                for (int i = 0; i < shape[1]; i++) {
                    for (int j = 0; j < i; j++) {
                        assertEquals(0f, qr.r().get(i, j), backend.name() + ": R below the diagonal");
                    }
                }
            }
            // R is unique up to the sign of each row
            ComputeBackend.QR cpu = CPU.qr(a);
            ComputeBackend.QR ref = REFERENCE.qr(a);
            for (int i = 0; i < shape[1]; i++) {
                assertEquals(Math.abs(ref.r().get(i, i)), Math.abs(cpu.r().get(i, i)), 1e-4 * Math.abs(ref.r().get(i, i)));
            }
        }
    }

    @Test
    void svdsHaveTheSameSingularValuesAndReproduceTheMatrix() {
        for (int[] shape : new int[][] {{1, 1}, {6, 4}, {4, 6}, {50, 50}, {120, 30}}) {
            Matrix a = matrix(shape[0], shape[1]);
            float[] reference = REFERENCE.svd(a).s();
            for (ComputeBackend backend : new ComputeBackend[] {CPU, REFERENCE}) {
                ComputeBackend.SVD svd = backend.svd(a);
                float[] s = svd.s();
                assertEquals(Math.min(shape[0], shape[1]), s.length);
                for (int i = 0; i < s.length; i++) {
                    assertEquals(reference[i], s[i], 1e-4 * reference[0], backend.name() + ": σ" + i);
                    assertTrue(i == 0 || s[i] <= s[i - 1], backend.name() + ": descending");
                }
                assertClose(a, REFERENCE.multiply(REFERENCE.multiply(svd.u(), diagonal(s)), svd.vt()), 1e-4);
            }
        }
    }

    @Test
    void bestRankFactorsAgreeThroughTheCoreAndThroughTheFullProduct() {
        // inner 12 < 40, 50: through the QR core; inner 60 > 40: through the SVD of the product
        for (int[] shape : new int[][] {{40, 12, 50}, {40, 60, 30}}) {
            Matrix left = matrix(shape[0], shape[1]);
            Matrix right = matrix(shape[1], shape[2]);
            for (int rank : new int[] {3, 12, 100}) {
                ComputeBackend.Factors cpu = CPU.bestRank(left, right, rank);
                ComputeBackend.Factors ref = REFERENCE.bestRank(left, right, rank);
                assertEquals(ref.a().rows(), cpu.a().rows(), "rank kept");
                // U_r·S_r·V_rᵀ is unique where the singular values are distinct, signs aside
                assertClose(REFERENCE.multiply(ref.b(), ref.a()), REFERENCE.multiply(cpu.b(), cpu.a()), 1e-4);
            }
            // at full rank, the product itself
            ComputeBackend.Factors full = CPU.bestRank(left, right, shape[1]);
            assertClose(REFERENCE.multiply(left, right), REFERENCE.multiply(full.b(), full.a()), 1e-4);
        }
    }

    private static Matrix identity(int n) {
        float[] v = new float[n * n];
        for (int i = 0; i < n; i++) {
            v[i * n + i] = 1;
        }
        return new Matrix(n, n, v);
    }

    private static Matrix diagonal(float[] s) {
        float[] v = new float[s.length * s.length];
        for (int i = 0; i < s.length; i++) {
            v[i * s.length + i] = s[i];
        }
        return new Matrix(s.length, s.length, v);
    }

    /** Equal shapes, and every entry within {@code relative} of the expected matrix's largest entry. */
    private static void assertClose(Matrix expected, Matrix actual, double relative) {
        assertEquals(expected.rows(), actual.rows(), "rows");
        assertEquals(expected.columns(), actual.columns(), "columns");
        double max = 0;
        for (float v : expected.values()) {
            max = Math.max(max, Math.abs(v));
        }
        for (int i = 0; i < expected.values().length; i++) {
            assertEquals(expected.values()[i], actual.values()[i], relative * max + 1e-30,
                    "entry " + i + " of " + expected.rows() + "×" + expected.columns());
        }
    }
}
