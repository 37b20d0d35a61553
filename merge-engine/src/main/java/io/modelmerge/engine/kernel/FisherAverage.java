package io.modelmerge.engine.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Fisher-weighted averaging: out = Σ cₘFₘxₘ / Σ cₘFₘ per element, over models xₘ with diagonal Fishers Fₘ, and
 * the plain weighted average Σ λₘxₘ where the Fishers sum to zero or there are none.
 */
public final class FisherAverage {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;

    private FisherAverage() {
    }

    /**
     * @param x           the n models, then (when {@code fishers}) their n Fishers
     * @param lambda      each model's share of the plain average (they sum to 1)
     * @param coefficient each model's cₘ (its weight over its Fisher norm)
     * @param floor       added to every Fisher, or with {@code firstFloored} (the reference implementation's
     *                    quirk) the floor of the first model's Fisher alone
     */
    public static void of(float[][] x, int n, float[] lambda, float[] coefficient, boolean fishers, float floor,
                          boolean firstFloored, float[] out, int length) {
        for (int i = 0; i < length; i += FS.length()) {
            VectorMask<Float> lanes = FS.indexInRange(i, length);
            FloatVector average = FloatVector.zero(FS);
            for (int m = 0; m < n; m++) {
                average = FloatVector.fromArray(FS, x[m], i, lanes).fma(FloatVector.broadcast(FS, lambda[m]), average);
            }
            if (!fishers) {
                average.intoArray(out, i, lanes);
                continue;
            }
            FloatVector numerator = FloatVector.zero(FS);
            FloatVector denominator = FloatVector.zero(FS);
            for (int m = 0; m < n; m++) {
                FloatVector f = FloatVector.fromArray(FS, x[n + m], i, lanes);
                f = firstFloored ? (m == 0 ? f.max(floor) : f) : f.add(floor);
                FloatVector c = f.mul(coefficient[m]);
                numerator = c.fma(FloatVector.fromArray(FS, x[m], i, lanes), numerator);
                denominator = denominator.add(c);
            }
            VectorMask<Float> weighed = denominator.compare(VectorOperators.GT, 0f);
            average.blend(numerator.div(denominator), weighed).intoArray(out, i, lanes);
        }
    }
}
