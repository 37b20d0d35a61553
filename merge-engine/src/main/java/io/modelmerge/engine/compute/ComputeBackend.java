package io.modelmerge.engine.compute;

/**
 * Where a merge's arithmetic runs: the dense linear algebra (products, QR, SVD: LoRA products, adapter and delta
 * factorisations) and the element-wise kernels. {@link #cpu()} is the default, on the JDK Vector API and ND4J's
 * OpenBLAS; {@link ScalarBackend} is the same arithmetic in plain loops, the reference the other is tested
 * against. A GPU backend plugs in here.
 */
public interface ComputeBackend {

    /** The CPU backend (Vector API, ND4J/OpenBLAS). */
    static ComputeBackend cpu() {
        return CpuBackend.INSTANCE;
    }

    /** For logs and metrics, e.g. {@code cpu}. */
    String name();

    /** a·b. */
    Matrix multiply(Matrix a, Matrix b);

    /** The thin QR of an m×n matrix, m ≥ n: Q m×n with orthonormal columns, R n×n upper triangular. */
    QR qr(Matrix a);

    /** The thin SVD of an m×n matrix: U m×p, S (p, descending), Vᵀ p×n, p = min(m, n). Signs are the backend's. */
    SVD svd(Matrix a);

    /**
     * The best rank-{@code rank} factors of left·right (Eckart–Young), as B = U_r·S_r and A = V_rᵀ: through the
     * QR of each factor and the SVD of the small core when the inner dimension is the smallest, else the SVD of
     * the product itself.
     */
    Factors bestRank(Matrix left, Matrix right, int rank);

    /** out[i] = Σₘ weights[m]·x[m][i] for i < length, the terms added in model order. */
    void weightedSum(float[][] x, float[] weights, float[] out, int length);

    /** y[i] += alpha·x[i] for i < length (the product rounded, then the sum). */
    void addScaled(float[] y, float alpha, float[] x, int length);

    /** out[i] = e^x[i] (about 1 ulp). */
    void exp(float[] x, float[] out, int length);

    /** out[i] = tanh(x[i]) (about 2 ulp). */
    void tanh(float[] x, float[] out, int length);

    /** A thin QR factorisation. */
    record QR(Matrix q, Matrix r) {
    }

    /** A thin singular value decomposition. */
    record SVD(Matrix u, float[] s, Matrix vt) {
        public SVD {
            s = s.clone();
        }

        @Override
        public float[] s() {
            return s.clone();
        }
    }

    /** Low-rank factors: the matrix is b·a, b m×r and a r×n. */
    record Factors(Matrix b, Matrix a) {
    }
}
