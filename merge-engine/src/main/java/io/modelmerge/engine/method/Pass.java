package io.modelmerge.engine.method;

import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.IntPredicate;
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
 * @param inputs      which of a block's models (by index, companions included) are read; the others, and the
 *                    base, are null in the blocks of a pass that reads only some
 */
public record Pass<A extends TensorMerge.Accumulator>(String name, Supplier<A> accumulator, Consumer<List<A>> end,
                                                       int stride, boolean ordered, Optional<IntPredicate> inputs) {

    public static <A extends TensorMerge.Accumulator> Pass<A> of(String name, Supplier<A> accumulator,
                                                                 Consumer<List<A>> end) {
        return new Pass<>(name, accumulator, end, 1, false, Optional.empty());
    }

    /** This pass reading every {@code stride}-th block only. */
    public Pass<A> sampling(int stride) {
        return new Pass<>(name, accumulator, end, stride, ordered, inputs);
    }

    /** This pass through one accumulator, every block in order. */
    public Pass<A> inOrder() {
        return new Pass<>(name, accumulator, end, stride, true, inputs);
    }

    /** This pass reading only the models {@code read} accepts (by index in the block), and not the base. */
    public Pass<A> readingOnly(IntPredicate read) {
        return new Pass<>(name, accumulator, end, stride, ordered, Optional.of(read));
    }
}
