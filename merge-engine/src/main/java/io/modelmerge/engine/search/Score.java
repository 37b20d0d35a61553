package io.modelmerge.engine.search;

import java.util.Map;

/** An evaluator's answer for one candidate: the score (higher is better) and named metrics. */
public record Score(double value, Map<String, Double> metrics) {
    public Score {
        if (Double.isNaN(value)) {
            throw new IllegalArgumentException("a score must be a number, got NaN");
        }
        metrics = Map.copyOf(metrics);
    }
}
