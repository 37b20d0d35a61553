package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.TaskVectors;
import io.modelmerge.engine.kernel.TopK;
import java.util.Optional;

/**
 * A magnitude selection ({@link TopK}) per model over its task vector δ = x − base, null for a model that selects
 * nothing, and the passes that feed them: each round, every worker counts each model's δ into that model's
 * counts, and the round ends for every selection at once.
 */
final class TaskVectorSelections {
    private final TopK[] selections;

    /** Over {@code selections}, by model; entries may be set later, before the first pass. */
    TaskVectorSelections(TopK[] selections) {
        this.selections = selections;
    }

    /** The next round's pass, named {@code name}, then {@code whenDone} once every selection is done; empty if done. */
    Optional<Pass<?>> nextPass(String name, Runnable whenDone) {
        if (done()) {
            return Optional.empty();
        }
        return Optional.of(Pass.of(name, Counts::new, parts -> {
            for (int m = 0; m < selections.length; m++) {
                if (selections[m] != null) {
                    int model = m;
                    selections[m].end(parts.stream().map(c -> c.counts[model]).toList());
                }
            }
            if (done()) {
                whenDone.run();
            }
        }));
    }

    private boolean done() {
        for (TopK s : selections) {
            if (s != null && !s.done()) {
                return false;
            }
        }
        return true;
    }

    /** One worker's counts of each selecting model's |δ| in the current round. */
    private final class Counts implements TensorMerge.Accumulator {
        final TopK.Counts[] counts = new TopK.Counts[selections.length];
        private float[] delta = new float[0];

        Counts() {
            for (int m = 0; m < counts.length; m++) {
                counts[m] = selections[m] == null ? null : selections[m].counts();
            }
        }

        @Override
        public void add(Block block) {
            if (delta.length < block.length()) {
                delta = new float[block.length()];
            }
            for (int m = 0; m < counts.length; m++) {
                if (counts[m] != null) {
                    TaskVectors.delta(block.models()[m], block.base(), delta, block.length());
                    counts[m].add(delta, block.length());
                }
            }
        }
    }
}
