package io.modelmerge.engine.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/** Weighted sums over float arrays on the Vector API: each output lane adds the models' terms in model order. */
public final class WeightedSums {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;

    private WeightedSums() {
    }

    /** out[i] = Σₘ weights[m]·x[m][i], by fused multiply-adds in model order, for i < length. */
    public static void weightedSum(float[][] x, float[] weights, float[] out, int length) {
        for (int i = 0; i < length; i += FS.length()) {
            VectorMask<Float> lanes = FS.indexInRange(i, length);
            FloatVector acc = FloatVector.zero(FS);
            for (int m = 0; m < x.length; m++) {
                acc = FloatVector.fromArray(FS, x[m], i, lanes).fma(FloatVector.broadcast(FS, weights[m]), acc);
            }
            acc.intoArray(out, i, lanes);
        }
    }

    /** y[i] += alpha·x[i] for i < length: the product rounded to float, then the sum (no fused multiply-add). */
    public static void addScaled(float[] y, float alpha, float[] x, int length) {
        for (int i = 0; i < length; i += FS.length()) {
            VectorMask<Float> lanes = FS.indexInRange(i, length);
            FloatVector.fromArray(FS, x, i, lanes).mul(alpha).add(FloatVector.fromArray(FS, y, i, lanes))
                    .intoArray(y, i, lanes);
        }
    }
}
