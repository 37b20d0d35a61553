package io.modelmerge.engine.method;

import java.util.Optional;

/**
 * A statistic over the whole model that a method needs before it merges any tensor: a magnitude threshold
 * chosen over all of a model's tensors, a Fisher norm. The executor streams the blocks of every tensor that
 * {@link #reads} it through {@link Pass}es, as a tensor's own passes stream one tensor, then gives each such
 * tensor's parameters the result ({@link #apply}).
 */
public interface ModelWidePass {

    /** Whether the merge of this tensor uses the result, and so whether its blocks feed the pass. */
    boolean reads(TensorParameters tensor);

    /**
     * The next pass over the blocks of every tensor that {@link #reads} the result (ordered passes see them in
     * tensor and block order), asked again after each pass ends; empty once the result is known.
     */
    Optional<Pass<?>> nextPass();

    /** The parameters of a tensor that {@link #reads} the result, with the result. */
    TensorParameters apply(TensorParameters tensor);

    /**
     * The result once known, as numbers a job can store and hand to other workers; {@link #restore} on a fresh
     * pass of the same merge gives it back, so a worker merging some of the tensors need not run the passes.
     */
    double[] result();

    /** Takes a {@link #result} as this pass's own, in place of running its passes. */
    void restore(double[] result);
}
