package io.modelmerge.engine.exec;

import io.modelmerge.engine.method.FisherMerge;
import io.modelmerge.engine.method.MergeMethod;
import java.util.List;

/**
 * For {@code fisher} with {@code normalize_fishers}: each model's Fisher norm over the whole model (every
 * tensor merged with Fishers), read once before the merge and handed to every tensor's parameters.
 */
final class FisherNorms {
    private FisherNorms() {
    }

    static List<PlannedTensor> apply(List<PlannedTensor> plan, List<InputModel> inputs, int block) {
        List<PlannedTensor> weighted = plan.stream().filter(FisherNorms::normalizes).toList();
        if (weighted.isEmpty()) {
            return plan;
        }
        int n = weighted.getFirst().parameters().models();
        double[] squares = new double[n];
        float[] buffer = new float[block];
        for (PlannedTensor t : weighted) {
            for (int m = 0; m < n; m++) {
                PlannedTensor.Input fisher = t.models().get(n + m);
                TensorSource source = inputs.get(fisher.model()).source(fisher.tensor());
                for (long offset = 0; offset < t.elements(); offset += block) {
                    int length = (int) Math.min(block, t.elements() - offset);
                    source.read(offset, length, buffer);
                    for (int i = 0; i < length; i++) {
                        squares[m] += (double) buffer[i] * buffer[i];
                    }
                }
            }
        }
        double[] norms = new double[n];
        for (int m = 0; m < n; m++) {
            norms[m] = Math.sqrt(squares[m]);
        }
        return plan.stream().map(t -> normalizes(t)
                ? t.withParameters(t.parameters().withModelNumbers(FisherMerge.FISHER_NORM, norms)) : t).toList();
    }

    private static boolean normalizes(PlannedTensor t) {
        var global = t.parameters().global();
        return !t.copy() && Boolean.TRUE.equals(global.get(MergeMethod.COMPANIONS_PRESENT))
                && Boolean.TRUE.equals(global.get("normalize_fishers"));
    }
}
