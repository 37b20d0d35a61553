package io.modelmerge.engine.compute;

import io.modelmerge.engine.kernel.VectorMath;
import io.modelmerge.engine.kernel.WeightedSums;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/** The CPU: element-wise kernels on the JDK Vector API ({@code kernel/}), dense linear algebra on ND4J's OpenBLAS. */
final class CpuBackend implements ComputeBackend {
    static final CpuBackend INSTANCE = new CpuBackend();

    private CpuBackend() {
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public Matrix multiply(Matrix a, Matrix b) {
        return matrix(array(a).mmul(array(b)));
    }

    @Override
    public QR qr(Matrix a) {
        INDArray[] qr = geqrf(array(a).dup('f'));
        return new QR(matrix(qr[0]), matrix(qr[1]));
    }

    @Override
    public SVD svd(Matrix a) {
        INDArray[] usv = gesvd(array(a));
        int p = Math.min(a.rows(), a.columns());
        return new SVD(matrix(usv[0].get(NDArrayIndex.all(), NDArrayIndex.interval(0, p))),
                usv[1].dup().data().asFloat(), matrix(usv[2].get(NDArrayIndex.interval(0, p), NDArrayIndex.all())));
    }

    @Override
    public Factors bestRank(Matrix left, Matrix right, int rank) {
        int inner = left.columns();
        int r = Math.min(rank, Math.min(inner, Math.min(left.rows(), right.columns())));
        INDArray l = array(left);
        INDArray rt = array(right);
        INDArray u;
        INDArray s;
        INDArray vt;
        if (inner <= left.rows() && inner <= right.columns()) {
            INDArray[] ql = geqrf(l.dup('f'));
            INDArray[] qr = geqrf(rt.transpose().dup('f'));
            INDArray[] core = gesvd(ql[1].mmul(qr[1].transpose()));
            u = ql[0].mmul(core[0]);
            s = core[1];
            vt = core[2].mmul(qr[0].transpose());
        } else {
            INDArray[] full = gesvd(l.mmul(rt));
            u = full[0];
            s = full[1];
            vt = full[2];
        }
        INDArray b = u.get(NDArrayIndex.all(), NDArrayIndex.interval(0, r)).mulRowVector(s.get(NDArrayIndex.interval(0, r)));
        INDArray a = vt.get(NDArrayIndex.interval(0, r), NDArrayIndex.all());
        return new Factors(matrix(b), matrix(a));
    }

    /** LAPACK's QR of an m×n ('f') matrix, m ≥ n, in place: {Q m×n, R n×n}. */
    private static INDArray[] geqrf(INDArray q) {
        INDArray r = Nd4j.create(DataType.FLOAT, new long[] {q.columns(), q.columns()}, 'f');
        Nd4j.getBlasWrapper().lapack().geqrf(q, r);
        return new INDArray[] {q, r};
    }

    /** LAPACK's SVD of an [m, n] matrix: {U [m, m], S [min], Vᵀ [n, n]}. */
    private static INDArray[] gesvd(INDArray matrix) {
        long m = matrix.rows();
        long n = matrix.columns();
        INDArray s = Nd4j.create(DataType.FLOAT, Math.min(m, n));
        INDArray u = Nd4j.create(DataType.FLOAT, new long[] {m, m}, 'f');
        INDArray vt = Nd4j.create(DataType.FLOAT, new long[] {n, n}, 'f');
        Nd4j.getBlasWrapper().lapack().gesvd(matrix.dup('f'), s, u, vt);
        return new INDArray[] {u, s, vt};
    }

    private static INDArray array(Matrix m) {
        return Nd4j.create(m.values(), new long[] {m.rows(), m.columns()}, 'c');
    }

    private static Matrix matrix(INDArray x) {
        return new Matrix((int) x.rows(), (int) x.columns(), x.dup('c').data().asFloat());
    }

    @Override
    public void weightedSum(float[][] x, float[] weights, float[] out, int length) {
        WeightedSums.weightedSum(x, weights, out, length);
    }

    @Override
    public void addScaled(float[] y, float alpha, float[] x, int length) {
        WeightedSums.addScaled(y, alpha, x, length);
    }

    @Override
    public void exp(float[] x, float[] out, int length) {
        VectorMath.exp(x, out, length);
    }

    @Override
    public void tanh(float[] x, float[] out, int length) {
        VectorMath.tanh(x, out, length);
    }
}
