package io.modelmerge.engine.method;

import java.util.List;

/**
 * How one tensor is merged, its parameters resolved. Methods that need a statistic of the whole tensor first
 * (a magnitude threshold, a norm) ask for passes over the data: each worker accumulates its blocks into its
 * own {@link Accumulator}, the accumulators are combined, and the next pass (or the merge) starts.
 */
public interface TensorMerge {

    /**
     * Blocks of a merge that is not row-aligned start at multiples of this many elements of the tensor and are
     * whole multiples of it (but the tensor's last): the unit tensor-wide sums are taken over.
     */
    int BLOCK_UNIT = 1024;

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

    /**
     * Whether each pass must see every block in tensor order, through one accumulator (its sums add element
     * by element across rows, so a split over workers would change their last bits); by default workers
     * split the tensor and their accumulators are combined.
     */
    default boolean orderedPasses() {
        return false;
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
