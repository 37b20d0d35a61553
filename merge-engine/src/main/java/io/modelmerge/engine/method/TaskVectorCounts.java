package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.TaskVectors;
import java.util.List;

/**
 * One worker's accumulator that hands each model's task vector δ = x − base, block by block, to that model's
 * counter (a histogram, a selection's counts); models without a counter are skipped.
 *
 * @param <C> the counter
 */
final class TaskVectorCounts<C> implements TensorMerge.Accumulator {

    /** Adds |values[0..length)| of one block to a counter. */
    @FunctionalInterface
    interface Adder<C> {
        void add(C counter, float[] values, int length);
    }

    private final List<C> counters;
    private final Adder<C> adder;
    private float[] delta = new float[0];

    /** @param counters one per model, null for a model that counts nothing */
    TaskVectorCounts(List<C> counters, Adder<C> adder) {
        this.counters = counters;
        this.adder = adder;
    }

    /** Model m's counter. */
    C counter(int m) {
        return counters.get(m);
    }

    @Override
    public void add(Block block) {
        if (delta.length < block.length()) {
            delta = new float[block.length()];
        }
        for (int m = 0; m < counters.size(); m++) {
            C counter = counters.get(m);
            if (counter != null) {
                TaskVectors.delta(block.models()[m], block.base(), delta, block.length());
                adder.add(counter, delta, block.length());
            }
        }
    }
}
