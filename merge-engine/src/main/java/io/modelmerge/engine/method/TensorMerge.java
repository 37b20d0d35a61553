package io.modelmerge.engine.method;

import java.util.Optional;

/**
 * How one tensor is merged, its parameters resolved. Methods that need a statistic of the whole tensor first
 * (a magnitude threshold, a norm) ask for {@link Pass}es over the data: each worker accumulates its blocks into
 * its own {@link Accumulator}, the pass ends with all of them, and the next pass (or the merge) starts.
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

    /**
     * The next pass over the tensor's data before {@link #merge}, asked again after each pass ends (so what a
     * pass finds may call for another); empty once the merge can start.
     */
    default Optional<Pass<?>> nextPass() {
        return Optional.empty();
    }

    /** Merges {@code block} into {@code out[0..block.length())}. Thread-safe once the passes are done. */
    void merge(Block block, float[] out);
}
