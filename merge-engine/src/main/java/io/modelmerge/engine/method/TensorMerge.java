package io.modelmerge.engine.method;

import java.util.List;

/**
 * How one tensor is merged, its parameters resolved. Methods that need a statistic of the whole tensor first
 * (a magnitude threshold, a norm) ask for passes over the data: each worker accumulates its blocks into its
 * own {@link Accumulator}, the accumulators are combined, and the next pass (or the merge) starts.
 */
public interface TensorMerge {

    /** Statistics one worker gathers in one pass. */
    interface Accumulator {
        void add(Block block);
    }

    /**
     * Whether every block must hold whole rows ({@link TensorParameters#columns} elements each), for methods that
     * rank or normalise within a row: the executor then cuts blocks at row boundaries.
     */
    default boolean rowAligned() {
        return false;
    }

    /** Passes over the data before {@link #merge}. */
    default int passes() {
        return 0;
    }

    /** Pass {@code pass} reads every {@code stride}-th block only (a sample); 1 reads them all. */
    default int stride(int pass) {
        return 1;
    }

    default Accumulator accumulator(int pass) {
        throw new IllegalStateException("no pass " + pass);
    }

    default void endPass(int pass, List<Accumulator> accumulators) {
        throw new IllegalStateException("no pass " + pass);
    }

    /** Merges {@code block} into {@code out[0..block.length())}. Thread-safe once the passes are done. */
    void merge(Block block, float[] out);
}
