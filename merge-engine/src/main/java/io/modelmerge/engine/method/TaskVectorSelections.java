package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.TopK;
import java.util.ArrayList;
import java.util.List;
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
        return Optional.of(Pass.of(name, this::counts, parts -> {
            for (int m = 0; m < selections.length; m++) {
                if (selections[m] != null) {
                    int model = m;
                    selections[m].end(parts.stream().map(c -> c.counter(model)).toList());
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
    private TaskVectorCounts<TopK.Counts> counts() {
        List<TopK.Counts> counts = new ArrayList<>();
        for (TopK s : selections) {
            counts.add(s == null ? null : s.counts());
        }
        return new TaskVectorCounts<>(counts, TopK.Counts::add);
    }
}
