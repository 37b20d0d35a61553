package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.SignElection;
import io.modelmerge.engine.kernel.WeightedSums;

/**
 * The last step of every task-vector method: out = base + λ · combine(w₁t₁, ..., wₙtₙ), where the combination is
 * the plain sum ({@code election: none}) or TIES' sign election ({@code mergekit} or {@code paper}, see
 * {@link GeneralizedTaskArithmetic}), divided by the weights (or agreeing weights) when normalizing.
 */
final class TaskVectorSum {
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
            WeightedSums.onto(t, weights, factor(), base, out, length);
        } else {
            SignElection.ties(t, weights, election == Election.PAPER, normalize, lambda, base, out, length);
        }
    }

    /** λ, divided by Σ wᵢ when normalizing (by 1 when that is ~0). */
    private float factor() {
        float total = 0;
        for (float w : weights) {
            total += w;
        }
        return normalize ? lambda / (Math.abs(total) < 1e-8f ? 1f : total) : lambda;
    }
}
