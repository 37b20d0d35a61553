package io.modelmerge.engine.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Sign election over task vectors: per element, a majority sign is elected and only the task vectors that agree
 * with it (a zero agrees with neither sign) are merged. TIES runs its one loop over whole vectors, the tail
 * padded ({@link Tail}); SCE's erase masks its loads.
 */
public final class SignElection {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;

    private SignElection() {
    }

    /**
     * TIES: out = base + λ · Σ_agreeing wᵢtᵢ (divided by the agreeing weights, or their count for the paper's
     * rule, when normalizing; by 1 where none agrees). The sign is that of Σ wᵢtᵢ (zero counts as +), and an
     * entry agrees when wᵢtᵢ has it; the paper's rule elects and compares the unweighted tᵢ instead.
     */
    public static void ties(float[][] t, float[] weights, boolean paper, boolean normalize, float lambda, float[] base,
                            float[] out, int length) {
        int tail = Tail.start(length);
        ties(t, weights, paper, normalize, lambda, base, out, 0, tail);
        if (tail < length) {
            float[] merged = new float[FS.length()];
            ties(Tail.padded(t, t.length, tail, length), weights, paper, normalize, lambda,
                    Tail.padded(base, tail, length), merged, 0, FS.length());
            System.arraycopy(merged, 0, out, tail, length - tail);
        }
    }

    /** Over [from, to), whole vectors. */
    private static void ties(float[][] t, float[] weights, boolean paper, boolean normalize, float lambda,
                             float[] base, float[] out, int from, int to) {
        FloatVector zero = FloatVector.zero(FS);
        long notNormal = normalize ? 0L : -1L;
        for (int i = from; i < to; i += FS.length()) {
            FloatVector vote = zero;
            for (int m = 0; m < t.length; m++) {
                FloatVector v = FloatVector.fromArray(FS, t[m], i);
                // the paper's rule weighs each by 1 (an fma with 1 is the add, exactly): a number chosen, not a vector
                vote = v.fma(FloatVector.broadcast(FS, paper ? 1f : weights[m]), vote);
            }
            VectorMask<Float> positive = vote.compare(VectorOperators.GE, 0f);
            FloatVector mixed = zero;
            FloatVector divisor = zero;
            for (int m = 0; m < t.length; m++) {
                FloatVector v = FloatVector.fromArray(FS, t[m], i);
                FloatVector weighted = v.mul(weights[m]);
                FloatVector judged = v.mul(paper ? 1f : weights[m]); // v itself, or weighted
                VectorMask<Float> agrees = judged.compare(VectorOperators.GT, 0f).and(positive)
                        .or(judged.compare(VectorOperators.LT, 0f).andNot(positive));
                mixed = mixed.add(zero.blend(weighted, agrees));
                divisor = divisor.add(zero.blend(FloatVector.broadcast(FS, paper ? 1f : weights[m]), agrees));
            }
            // not normalizing divides by 1, which leaves every value as it is
            VectorMask<Float> byOne = divisor.compare(VectorOperators.EQ, 0f).or(VectorMask.fromLong(FS, notNormal));
            FloatVector delta = mixed.div(divisor.blend(1f, byOne));
            delta.fma(FloatVector.broadcast(FS, lambda), FloatVector.fromArray(FS, base, i)).intoArray(out, i);
        }
    }

    /**
     * SCE's Erase over the {@code selected} elements (score >= threshold): out = base + Σ_agreeing wᵢτᵢ /
     * max(Σ_agreeing wᵢ, 1e-6) with τᵢ = xᵢ − base and the sign that of Σ τᵢ (zero counts as +); elsewhere base.
     */
    public static void weightedMean(float[][] x, int n, float[] weights, float[] base, float[] score, float threshold,
                                    float[] out, int length) {
        for (int i = 0; i < length; i += FS.length()) {
            VectorMask<Float> lanes = FS.indexInRange(i, length);
            FloatVector b = FloatVector.fromArray(FS, base, i, lanes);
            VectorMask<Float> selected = FloatVector.fromArray(FS, score, i, lanes)
                    .compare(VectorOperators.GE, threshold);
            FloatVector vote = FloatVector.zero(FS);
            for (int m = 0; m < n; m++) {
                vote = vote.add(FloatVector.fromArray(FS, x[m], i, lanes).sub(b));
            }
            VectorMask<Float> positive = vote.compare(VectorOperators.GE, 0f);
            FloatVector mixed = FloatVector.zero(FS);
            FloatVector divisor = FloatVector.zero(FS);
            for (int m = 0; m < n; m++) {
                FloatVector d = FloatVector.fromArray(FS, x[m], i, lanes).sub(b);
                VectorMask<Float> agrees = d.compare(VectorOperators.GT, 0f).and(positive)
                        .or(d.compare(VectorOperators.LT, 0f).andNot(positive));
                mixed = mixed.add(FloatVector.zero(FS).blend(d.mul(weights[m]), agrees));
                divisor = divisor.add(FloatVector.zero(FS).blend(weights[m], agrees));
            }
            // not selected: every task vector is zero there, and so is the merged one
            FloatVector delta = FloatVector.zero(FS).blend(mixed.div(divisor.max(1e-6f)), selected);
            b.add(delta).intoArray(out, i, lanes);
        }
    }
}
