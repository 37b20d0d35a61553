package io.modelmerge.engine.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Elementwise math on task vectors δ = x − base: taking them, thinning them (by a magnitude threshold, a random
 * mask, or a band of magnitudes) and their L1 norms. Full vectors run unmasked, the tail masked, with the same
 * arithmetic.
 */
public final class TaskVectors {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;

    private TaskVectors() {
    }

    /** How a task vector is thinned: entries below a magnitude threshold dropped, or a random mask's. */
    public sealed interface Thinning {
        /** Nothing dropped. */
        record None() implements Thinning {
        }

        /** Entries with |δ| below {@code threshold} dropped. */
        record Magnitude(float threshold) implements Thinning {
        }

        /** Entries outside {@link RandomMask}'s mask dropped; {@code offset} is the first element's index. */
        record Random(int seed, int threshold24, long offset) implements Thinning {
        }
    }

    /** delta[i] = x[i] − base[i] for i < length (whole vectors, then the tail padded). */
    public static void delta(float[] x, float[] base, float[] delta, int length) {
        int tail = Tail.start(length);
        for (int i = 0; i < tail; i += FS.length()) {
            FloatVector.fromArray(FS, x, i).sub(FloatVector.fromArray(FS, base, i)).intoArray(delta, i);
        }
        if (tail < length) {
            float[] d = new float[FS.length()];
            FloatVector.fromArray(FS, Tail.padded(x, tail, length), 0)
                    .sub(FloatVector.fromArray(FS, Tail.padded(base, tail, length), 0)).intoArray(d, 0);
            System.arraycopy(d, 0, delta, tail, length - tail);
        }
    }

    /** x[i] ← scale · thinned(x[i] − base[i]) for i < length: the thinned, rescaled task vector, in place. */
    public static void thin(float[] x, float[] base, Thinning thinning, float scale, int length) {
        int tail = Tail.start(length);
        thin(x, base, thinning, scale, 0, 0, tail);
        if (tail < length) {
            float[] padded = Tail.padded(x, tail, length);
            thin(padded, Tail.padded(base, tail, length), thinning, scale, tail, 0, FS.length());
            System.arraycopy(padded, 0, x, tail, length - tail);
        }
    }

    /**
     * Counts over elements [0, length) of δ = x − base: how many have |δ| > threshold ({@code counts[0]}) and
     * how many equal it ({@code counts[1]}), added to {@code counts}.
     */
    public static void countAgainst(float[] x, float[] base, float threshold, int length, long[] counts) {
        for (int i = 0; i < length; i += FS.length()) {
            VectorMask<Float> lanes = FS.indexInRange(i, length);
            FloatVector magnitude = FloatVector.fromArray(FS, x, i, lanes)
                    .sub(FloatVector.fromArray(FS, base, i, lanes)).abs();
            counts[0] += magnitude.compare(VectorOperators.GT, threshold, lanes).trueCount();
            counts[1] += magnitude.compare(VectorOperators.EQ, threshold, lanes).trueCount();
        }
    }

    /**
     * Over [from, to), whole vectors, element i being element {@code shift + i} of the task vector (for the random
     * mask). One loop per kind of thinning, so the choice is not made again for every vector.
     */
    private static void thin(float[] x, float[] base, Thinning thinning, float scale, long shift, int from, int to) {
        FloatVector zero = FloatVector.zero(FS);
        switch (thinning) {
            case Thinning.None none -> {
                for (int i = from; i < to; i += FS.length()) {
                    FloatVector.fromArray(FS, x, i).sub(FloatVector.fromArray(FS, base, i)).mul(scale).intoArray(x, i);
                }
            }
            case Thinning.Magnitude magnitude -> {
                float threshold = magnitude.threshold();
                for (int i = from; i < to; i += FS.length()) {
                    FloatVector d = FloatVector.fromArray(FS, x, i).sub(FloatVector.fromArray(FS, base, i));
                    zero.blend(d, d.abs().compare(VectorOperators.GE, threshold)).mul(scale).intoArray(x, i);
                }
            }
            case Thinning.Random mask -> {
                long offset = mask.offset() + shift;
                int[] draws = RandomMask.drawBuffer();
                for (int i = from; i < to; i += FS.length()) {
                    FloatVector d = FloatVector.fromArray(FS, x, i).sub(FloatVector.fromArray(FS, base, i));
                    long kept = RandomMask.keepBits(mask.seed(), offset + i, mask.threshold24(), draws);
                    zero.blend(d, VectorMask.fromLong(FS, kept)).mul(scale).intoArray(x, i);
                }
            }
        }
    }

    /** x[i] ← (x[i] − base[i])·scale where lower <= |x[i] − base[i]| < upper, else 0, for i < length. */
    public static void keepBand(float[] x, float[] base, float lower, float upper, float scale, int length) {
        for (int i = 0; i < length; i += FS.length()) {
            VectorMask<Float> lanes = FS.indexInRange(i, length);
            FloatVector d = FloatVector.fromArray(FS, x, i, lanes).sub(FloatVector.fromArray(FS, base, i, lanes));
            FloatVector magnitude = d.abs();
            VectorMask<Float> kept = magnitude.compare(VectorOperators.GE, lower)
                    .and(magnitude.compare(VectorOperators.LT, upper));
            FloatVector.zero(FS).blend(d, kept).mul(scale).intoArray(x, i, lanes);
        }
    }

    /**
     * The L1 norm of δ = x − base over [from, from + length), and of the entries {@code thinning} keeps (a random
     * mask's, or those at or above a magnitude threshold): added to {@code sums[all]} and {@code sums[kept]}. Each
     * sum runs in F32 lanes over the full vectors, then adds the lanes and the tail's elements one by one in
     * double, in index order.
     */
    public static void addL1(float[] x, float[] base, Thinning thinning, int from, int length, double[] sums,
                             int all, int kept) {
        Thinning.Random mask = thinning instanceof Thinning.Random r ? r : null;
        float threshold = thinning instanceof Thinning.Magnitude m ? m.threshold() : 0f;
        int[] draws = RandomMask.drawBuffer();
        FloatVector a = FloatVector.zero(FS);
        FloatVector k = FloatVector.zero(FS);
        int i = from;
        for (int bound = from + FS.loopBound(length); i < bound; i += FS.length()) {
            FloatVector d = FloatVector.fromArray(FS, x, i).sub(FloatVector.fromArray(FS, base, i)).abs();
            long survivors = mask != null
                    ? RandomMask.keepBits(mask.seed(), mask.offset() + i, mask.threshold24(), draws)
                    : d.compare(VectorOperators.GE, threshold).toLong();
            a = a.add(d);
            k = k.add(FloatVector.zero(FS).blend(d, VectorMask.fromLong(FS, survivors)));
        }
        double sumAll = Lanes.sum(a);
        double sumKept = Lanes.sum(k);
        if (i < from + length) {
            VectorMask<Float> lanes = FS.indexInRange(i, from + length);
            FloatVector d = FloatVector.fromArray(FS, x, i, lanes).sub(FloatVector.fromArray(FS, base, i, lanes)).abs();
            long survivors = mask != null
                    ? RandomMask.keepBits(mask.seed(), mask.offset() + i, mask.threshold24(), draws)
                    : d.compare(VectorOperators.GE, threshold).toLong();
            sumAll = Lanes.addInOrder(sumAll, d);
            VectorMask<Float> keptLanes = VectorMask.fromLong(FS, survivors & lanes.toLong());
            sumKept = Lanes.addInOrder(sumKept, FloatVector.zero(FS).blend(d, keptLanes));
        }
        sums[all] += sumAll;
        sums[kept] += sumKept;
    }

    /**
     * variance[j] = the population variance of τₘ = x[m][i] − base[i] over the n models, at i = from + j for
     * j < length: Σ (τₘ − mean)² / n in F32, the mean Σ τₘ / n, both sums taken over the τₘ sorted ascending, so
     * the result does not depend on the order the models are listed in.
     */
    public static void variance(float[][] x, int n, float[] base, int from, int length, float[] variance) {
        float[][] sorted = new float[n][FS.length()];
        for (int j = 0; j < length; j += FS.length()) {
            VectorMask<Float> lanes = FS.indexInRange(j, length);
            int i = from + j;
            FloatVector b = FloatVector.fromArray(FS, base, i, lanes);
            for (int m = 0; m < n; m++) {
                FloatVector.fromArray(FS, x[m], i, lanes).sub(b).intoArray(sorted[m], 0);
            }
            for (int pass = 0; pass < n - 1; pass++) { // a sorting network, lane by lane
                for (int m = 0; m < n - 1 - pass; m++) {
                    FloatVector lo = FloatVector.fromArray(FS, sorted[m], 0);
                    FloatVector hi = FloatVector.fromArray(FS, sorted[m + 1], 0);
                    lo.min(hi).intoArray(sorted[m], 0);
                    lo.max(hi).intoArray(sorted[m + 1], 0);
                }
            }
            FloatVector mean = FloatVector.zero(FS);
            for (int m = 0; m < n; m++) {
                mean = mean.add(FloatVector.fromArray(FS, sorted[m], 0));
            }
            mean = mean.div(n);
            FloatVector sum = FloatVector.zero(FS);
            for (int m = 0; m < n; m++) {
                FloatVector d = FloatVector.fromArray(FS, sorted[m], 0).sub(mean);
                sum = d.fma(d, sum);
            }
            sum.div(n).intoArray(variance, j, lanes);
        }
    }
}
