package io.modelmerge.engine.method;

import java.util.List;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * One pass over data before a merge: each worker feeds the blocks it reads to its own accumulator, then the
 * pass ends with all of them, in the order of the ranges they read.
 *
 * @param name        what the pass gathers, for messages
 * @param accumulator a fresh accumulator for one worker
 * @param end         takes the accumulators once every block is read
 * @param stride      reads every {@code stride}-th block only (a sample); 1 reads them all
 * @param ordered     whether every block must go through one accumulator in order (its sums add element by
 *                    element, so a split over workers would change their last bits)
 */
public record Pass<A extends TensorMerge.Accumulator>(String name, Supplier<A> accumulator, Consumer<List<A>> end,
                                                       int stride, boolean ordered) {

    public static <A extends TensorMerge.Accumulator> Pass<A> of(String name, Supplier<A> accumulator,
                                                                 Consumer<List<A>> end) {
        return new Pass<>(name, accumulator, end, 1, false);
    }

    /** This pass reading every {@code stride}-th block only. */
    public Pass<A> sampling(int stride) {
        return new Pass<>(name, accumulator, end, stride, ordered);
    }

    /** This pass through one accumulator, every block in order. */
    public Pass<A> inOrder() {
        return new Pass<>(name, accumulator, end, stride, true);
    }
}
