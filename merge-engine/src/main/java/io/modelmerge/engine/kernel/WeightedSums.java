package io.modelmerge.engine.kernel;

import io.modelmerge.storage.safetensors.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * Weighted sums over float arrays on the Vector API: each output lane adds the models' terms in model order. Full
 * vectors run unmasked and the tail masked, with the same arithmetic.
 */
public final class WeightedSums {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;

    private WeightedSums() {
    }

    /** out[i] = Σₘ weights[m]·x[m][i], by fused multiply-adds in model order, for i < length. */
    public static void weightedSum(float[][] x, float[] weights, float[] out, int length) {
        blend(x, x.length, weights, null, 0, out, 0, length);
    }

    /**
     * out[i] = (Σₘ weights[m]·x[m][i]) / divisor as PyTorch computes {@code (w * x).sum(0) / w.sum()}: each product
     * rounded, the products added in model order, then one division; for i < length.
     */
    public static void sumOfProducts(float[][] x, float[] weights, float divisor, float[] out, int length) {
        int tail = Tail.start(length);
        sumOfProducts(x, weights, divisor, out, 0, tail);
        if (tail < length) {
            float[] sum = new float[FS.length()];
            sumOfProducts(Tail.padded(x, x.length, tail, length), weights, divisor, sum, 0, FS.length());
            System.arraycopy(sum, 0, out, tail, length - tail);
        }
    }

    /**
     * {@link #sumOfProducts} as PyTorch computes it in a 16-bit {@code dtype}: each product rounded to it, the
     * products summed in F32 (PyTorch accumulates a reduction of 16-bit floats in F32) and the sum rounded, then
     * divided and rounded again. The weights and divisor are {@code dtype} values already. Element by element: it
     * serves {@code compute_dtype: recipe}, where agreeing with mergekit matters more than speed.
     */
    public static void sumOfProducts(float[][] x, float[] weights, float divisor, float[] out, int length, DType dtype) {
        for (int i = 0; i < length; i++) {
            float sum = 0;
            for (int m = 0; m < x.length; m++) {
                sum += Floats.round(weights[m] * x[m][i], dtype);
            }
            out[i] = Floats.round(Floats.round(sum, dtype) / divisor, dtype);
        }
    }

    /** Over [from, to), whole vectors. */
    private static void sumOfProducts(float[][] x, float[] weights, float divisor, float[] out, int from, int to) {
        for (int i = from; i < to; i += FS.length()) {
            FloatVector acc = FloatVector.fromArray(FS, x[0], i).mul(weights[0]);
            for (int m = 1; m < x.length; m++) {
                acc = acc.add(FloatVector.fromArray(FS, x[m], i).mul(weights[m]));
            }
            acc.div(divisor).intoArray(out, i);
        }
    }

    /**
     * out[i] = base[i] + factor·Σₘ weights[m]·x[m][i], by fused multiply-adds (the sum in model order, then the
     * factor onto the base), for i < length.
     */
    public static void onto(float[][] x, float[] weights, float factor, float[] base, float[] out, int length) {
        int tail = Tail.start(length);
        onto(x, weights, factor, base, out, 0, tail);
        if (tail < length) {
            float[] sum = new float[FS.length()];
            onto(Tail.padded(x, x.length, tail, length), weights, factor, Tail.padded(base, tail, length), sum, 0,
                    FS.length());
            System.arraycopy(sum, 0, out, tail, length - tail);
        }
    }

    /** Over [from, to), whole vectors. */
    private static void onto(float[][] x, float[] weights, float factor, float[] base, float[] out, int from, int to) {
        for (int i = from; i < to; i += FS.length()) {
            FloatVector acc = FloatVector.zero(FS);
            for (int m = 0; m < x.length; m++) {
                acc = FloatVector.fromArray(FS, x[m], i).fma(FloatVector.broadcast(FS, weights[m]), acc);
            }
            acc.fma(FloatVector.broadcast(FS, factor), FloatVector.fromArray(FS, base, i)).intoArray(out, i);
        }
    }

    /**
     * out[i] = keep·base[i] + Σₘ weights[m]·x[m][i] (without a base, the sum alone), by fused multiply-adds in
     * model order, for i in [from, from + length).
     */
    public static void blend(float[][] x, int models, float[] weights, float[] base, float keep, float[] out, int from,
                             int length) {
        for (int i = from, end = from + length; i < end; i += FS.length()) {
            VectorMask<Float> lanes = FS.indexInRange(i, end);
            FloatVector acc = base == null ? FloatVector.zero(FS) : FloatVector.fromArray(FS, base, i, lanes).mul(keep);
            for (int m = 0; m < models; m++) {
                acc = FloatVector.fromArray(FS, x[m], i, lanes).fma(FloatVector.broadcast(FS, weights[m]), acc);
            }
            acc.intoArray(out, i, lanes);
        }
    }

    /** y[i] += alpha·x[i] for i < length: the product rounded to float, then the sum (no fused multiply-add). */
    public static void addScaled(float[] y, float alpha, float[] x, int length) {
        int tail = Tail.start(length);
        addScaled(y, alpha, x, 0, tail);
        if (tail < length) {
            float[] sum = Tail.padded(y, tail, length);
            addScaled(sum, alpha, Tail.padded(x, tail, length), 0, FS.length());
            System.arraycopy(sum, 0, y, tail, length - tail);
        }
    }

    /** Over [from, to), whole vectors. */
    private static void addScaled(float[] y, float alpha, float[] x, int from, int to) {
        for (int i = from; i < to; i += FS.length()) {
            FloatVector.fromArray(FS, x, i).mul(alpha).add(FloatVector.fromArray(FS, y, i)).intoArray(y, i);
        }
    }
}
