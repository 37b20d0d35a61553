package io.modelmerge.engine.method;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The last step of every task-vector method: out = base + λ · combine(w₁t₁, ..., wₙtₙ), where the combination is
 * the plain sum ({@code election: none}) or TIES' sign election ({@code mergekit} or {@code paper}, see
 * {@link GeneralizedTaskArithmetic}), divided by the weights (or agreeing weights) when normalizing.
 */
final class TaskVectorSum {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;

    private final float[] weights;
    private final Election election;
    private final boolean normalize;
    private final float lambda;

    TaskVectorSum(float[] weights, Election election, boolean normalize, float lambda) {
        this.weights = weights.clone();
        this.election = election;
        this.normalize = normalize;
        this.lambda = lambda;
    }

    /** The sum a method's tensor parameters ask for: per-model {@code weight}, global {@code normalize}, {@code lambda}. */
    static TaskVectorSum of(TensorParameters p, Election election) {
        float[] weights = new float[p.models()];
        for (int m = 0; m < weights.length; m++) {
            weights[m] = (float) p.modelNumber(m, "weight");
        }
        return new TaskVectorSum(weights, election, p.flag("normalize"), (float) p.number("lambda"));
    }

    /** Combines the task vectors {@code t} (overwritten by nothing) onto {@code base} into {@code out}. */
    void into(float[][] t, float[] base, float[] out, int length) {
        if (election == Election.NONE) {
            sum(t, base, out, length);
        } else {
            elect(t, base, out, length, election == Election.PAPER);
        }
    }

    /** out = base + λ Σ wᵢtᵢ (divided by Σ wᵢ when normalizing). */
    private void sum(float[][] t, float[] base, float[] out, int length) {
        float total = 0;
        for (float w : weights) {
            total += w;
        }
        float factor = normalize ? lambda / (Math.abs(total) < 1e-8f ? 1f : total) : lambda;
        int i = 0;
        for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
            FloatVector acc = FloatVector.zero(FS);
            for (int m = 0; m < t.length; m++) {
                acc = FloatVector.fromArray(FS, t[m], i).fma(FloatVector.broadcast(FS, weights[m]), acc);
            }
            acc.fma(FloatVector.broadcast(FS, factor), FloatVector.fromArray(FS, base, i)).intoArray(out, i);
        }
        for (; i < length; i++) {
            float acc = 0;
            for (int m = 0; m < t.length; m++) {
                acc = Math.fma(t[m][i], weights[m], acc);
            }
            out[i] = Math.fma(acc, factor, base[i]);
        }
    }

    /** Sign election over the trimmed task vectors, then the agreeing ones merged. */
    private void elect(float[][] t, float[] base, float[] out, int length, boolean paper) {
        FloatVector zero = FloatVector.zero(FS);
        int i = 0;
        for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
            FloatVector vote = zero;
            for (int m = 0; m < t.length; m++) {
                FloatVector v = FloatVector.fromArray(FS, t[m], i);
                vote = paper ? vote.add(v) : v.fma(FloatVector.broadcast(FS, weights[m]), vote);
            }
            VectorMask<Float> positive = vote.compare(VectorOperators.GE, 0f);
            FloatVector mixed = zero;
            FloatVector divisor = zero;
            for (int m = 0; m < t.length; m++) {
                FloatVector v = FloatVector.fromArray(FS, t[m], i);
                FloatVector weighted = v.mul(weights[m]);
                FloatVector judged = paper ? v : weighted; // the paper elects on, and compares, unweighted deltas
                VectorMask<Float> agrees = judged.compare(VectorOperators.GT, 0f).and(positive)
                        .or(judged.compare(VectorOperators.LT, 0f).andNot(positive));
                mixed = mixed.add(zero.blend(weighted, agrees));
                divisor = divisor.add(zero.blend(FloatVector.broadcast(FS, paper ? 1f : weights[m]), agrees));
            }
            FloatVector delta = normalize ? mixed.div(divisor.blend(1f, divisor.compare(VectorOperators.EQ, 0f))) : mixed;
            delta.fma(FloatVector.broadcast(FS, lambda), FloatVector.fromArray(FS, base, i)).intoArray(out, i);
        }
        for (; i < length; i++) {
            float vote = 0;
            for (int m = 0; m < t.length; m++) {
                vote = paper ? vote + t[m][i] : Math.fma(t[m][i], weights[m], vote);
            }
            boolean positive = vote >= 0;
            float mixed = 0;
            float divisor = 0;
            for (int m = 0; m < t.length; m++) {
                float weighted = t[m][i] * weights[m];
                float judged = paper ? t[m][i] : weighted;
                if (positive ? judged > 0 : judged < 0) {
                    mixed += weighted;
                    divisor += paper ? 1f : weights[m];
                }
            }
            float delta = normalize ? mixed / (divisor == 0 ? 1f : divisor) : mixed;
            out[i] = Math.fma(delta, lambda, base[i]);
        }
    }
}
