package io.modelmerge.engine.compute;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * Every operation of a {@link ComputeBackend} as the textbook states it, in plain loops and double precision:
 * products as sums, QR by Householder reflections, SVD by one-sided Jacobi rotations, exp and tanh from
 * {@link Math}. Slow, and meant to be: it is the reference the fast backends are tested against.
 */
public final class ScalarBackend implements ComputeBackend {
    private static final int MAX_SWEEPS = 60;

    @Override
    public String name() {
        return "scalar";
    }

    @Override
    public Matrix multiply(Matrix a, Matrix b) {
        if (a.columns() != b.rows()) {
            throw new IllegalArgumentException("cannot multiply " + a.rows() + "×" + a.columns() + " by " + b.rows()
                    + "×" + b.columns());
        }
        float[] c = new float[a.rows() * b.columns()];
        for (int i = 0; i < a.rows(); i++) {
            for (int j = 0; j < b.columns(); j++) {
                double sum = 0;
                for (int k = 0; k < a.columns(); k++) {
                    sum += (double) a.get(i, k) * b.get(k, j);
                }
                c[i * b.columns() + j] = (float) sum;
            }
        }
        return new Matrix(a.rows(), b.columns(), c);
    }

    @Override
    public QR qr(Matrix a) {
        int m = a.rows();
        int n = a.columns();
        if (m < n) {
            throw new IllegalArgumentException("thin QR needs rows ≥ columns, got " + m + "×" + n);
        }
        double[][] r = toDouble(a);
        double[][] q = new double[m][m];
        for (int i = 0; i < m; i++) {
            q[i][i] = 1;
        }
        for (int k = 0; k < n; k++) {
            double norm = 0;
            for (int i = k; i < m; i++) {
                norm += r[i][k] * r[i][k];
            }
            norm = Math.sqrt(norm);
            if (norm == 0) {
                continue;
            }
            double alpha = r[k][k] > 0 ? -norm : norm;
            double[] v = new double[m];
            v[k] = r[k][k] - alpha;
            for (int i = k + 1; i < m; i++) {
                v[i] = r[i][k];
            }
            double vv = 0;
            for (int i = k; i < m; i++) {
                vv += v[i] * v[i];
            }
            if (vv == 0) {
                continue;
            }
            reflect(r, v, vv, k, n);
            // Q ← Q·H: apply the reflection to Q's rows from the right
            for (int row = 0; row < m; row++) {
                double dot = 0;
                for (int i = k; i < m; i++) {
                    dot += q[row][i] * v[i];
                }
                double f = 2 * dot / vv;
                for (int i = k; i < m; i++) {
                    q[row][i] -= f * v[i];
                }
            }
        }
        float[] thinQ = new float[m * n];
        float[] thinR = new float[n * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                thinQ[i * n + j] = (float) q[i][j];
                if (i < n && j >= i) {
                    thinR[i * n + j] = (float) r[i][j];
                }
            }
        }
        return new QR(new Matrix(m, n, thinQ), new Matrix(n, n, thinR));
    }

    /** H·r for the columns k.. of r, H = I − 2vvᵀ/(vᵀv). */
    private static void reflect(double[][] r, double[] v, double vv, int k, int n) {
        for (int j = k; j < n; j++) {
            double dot = 0;
            for (int i = k; i < r.length; i++) {
                dot += v[i] * r[i][j];
            }
            double f = 2 * dot / vv;
            for (int i = k; i < r.length; i++) {
                r[i][j] -= f * v[i];
            }
        }
    }

    @Override
    public SVD svd(Matrix a) {
        if (a.rows() < a.columns()) {
            SVD t = svd(a.transpose());
            return new SVD(t.vt().transpose(), t.s(), t.u().transpose());
        }
        int m = a.rows();
        int n = a.columns();
        double[][] u = toDouble(a);
        double[][] v = new double[n][n];
        for (int i = 0; i < n; i++) {
            v[i][i] = 1;
        }
        for (int sweep = 0; sweep < MAX_SWEEPS && rotateOnce(u, v, m, n); sweep++) {
            // each sweep rotates every pair of columns towards orthogonality
        }
        double[] sigma = new double[n];
        for (int j = 0; j < n; j++) {
            double norm = 0;
            for (int i = 0; i < m; i++) {
                norm += u[i][j] * u[i][j];
            }
            sigma[j] = Math.sqrt(norm);
        }
        Integer[] order = IntStream.range(0, n).boxed().sorted(Comparator.comparingDouble(j -> -sigma[j]))
                .toArray(Integer[]::new);
        float[] uOut = new float[m * n];
        float[] s = new float[n];
        float[] vt = new float[n * n];
        for (int c = 0; c < n; c++) {
            int j = order[c];
            s[c] = (float) sigma[j];
            for (int i = 0; i < m; i++) {
                uOut[i * n + c] = sigma[j] == 0 ? 0f : (float) (u[i][j] / sigma[j]);
            }
            for (int i = 0; i < n; i++) {
                vt[c * n + i] = (float) v[i][j];
            }
        }
        return new SVD(new Matrix(m, n, uOut), s, new Matrix(n, n, vt));
    }

    /** One sweep of Jacobi rotations over every pair of columns; whether any pair still needed one. */
    private static boolean rotateOnce(double[][] u, double[][] v, int m, int n) {
        boolean rotated = false;
        for (int p = 0; p < n - 1; p++) {
            for (int q = p + 1; q < n; q++) {
                double alpha = 0;
                double beta = 0;
                double gamma = 0;
                for (int i = 0; i < m; i++) {
                    alpha += u[i][p] * u[i][p];
                    beta += u[i][q] * u[i][q];
                    gamma += u[i][p] * u[i][q];
                }
                if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta) || gamma == 0) {
                    continue;
                }
                rotated = true;
                double zeta = (beta - alpha) / (2 * gamma);
                double t = Math.signum(zeta) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
                if (zeta == 0) {
                    t = 1;
                }
                double c = 1 / Math.sqrt(1 + t * t);
                double s = c * t;
                rotate(u, p, q, c, s);
                rotate(v, p, q, c, s);
            }
        }
        return rotated;
    }

    private static void rotate(double[][] x, int p, int q, double c, double s) {
        for (double[] row : x) {
            double xp = row[p];
            double xq = row[q];
            row[p] = c * xp - s * xq;
            row[q] = s * xp + c * xq;
        }
    }

    @Override
    public Factors bestRank(Matrix left, Matrix right, int rank) {
        int inner = left.columns();
        int r = Math.min(rank, Math.min(inner, Math.min(left.rows(), right.columns())));
        Matrix u;
        float[] s;
        Matrix vt;
        if (inner <= left.rows() && inner <= right.columns()) {
            QR ql = qr(left);
            QR qr = qr(right.transpose());
            SVD core = svd(multiply(ql.r(), qr.r().transpose()));
            u = multiply(ql.q(), core.u());
            s = core.s();
            vt = multiply(core.vt(), qr.q().transpose());
        } else {
            SVD full = svd(multiply(left, right));
            u = full.u();
            s = full.s();
            vt = full.vt();
        }
        float[] b = new float[left.rows() * r];
        for (int i = 0; i < left.rows(); i++) {
            for (int j = 0; j < r; j++) {
                b[i * r + j] = u.get(i, j) * s[j];
            }
        }
        float[] a = Arrays.copyOf(vt.values(), r * right.columns());
        return new Factors(new Matrix(left.rows(), r, b), new Matrix(r, right.columns(), a));
    }

    private static double[][] toDouble(Matrix a) {
        double[][] x = new double[a.rows()][a.columns()];
        for (int i = 0; i < a.rows(); i++) {
            for (int j = 0; j < a.columns(); j++) {
                x[i][j] = a.get(i, j);
            }
        }
        return x;
    }

    @Override
    public void weightedSum(float[][] x, float[] weights, float[] out, int length) {
        for (int i = 0; i < length; i++) {
            double sum = 0;
            for (int m = 0; m < x.length; m++) {
                sum += (double) weights[m] * x[m][i];
            }
            out[i] = (float) sum;
        }
    }

    @Override
    public void addScaled(float[] y, float alpha, float[] x, int length) {
        for (int i = 0; i < length; i++) {
            y[i] += alpha * x[i];
        }
    }

    @Override
    public void exp(float[] x, float[] out, int length) {
        for (int i = 0; i < length; i++) {
            out[i] = (float) Math.exp(x[i]);
        }
    }

    @Override
    public void tanh(float[] x, float[] out, int length) {
        for (int i = 0; i < length; i++) {
            out[i] = (float) Math.tanh(x[i]);
        }
    }
}
