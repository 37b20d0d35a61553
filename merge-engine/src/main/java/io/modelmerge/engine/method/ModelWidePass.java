package io.modelmerge.engine.method;

import java.util.List;

/**
 * A statistic over the whole model that a method needs before it merges any tensor: a magnitude threshold
 * chosen over all of a model's tensors, a Fisher norm. The executor streams the blocks of every tensor that
 * {@link #reads} it through accumulators, pass by pass (the same {@link TensorMerge.Accumulator} protocol as a
 * tensor's own passes), then gives each such tensor's parameters the result ({@link #apply}).
 */
public interface ModelWidePass {

    /** Whether the merge of this tensor uses the result, and so whether its blocks feed the pass. */
    boolean reads(TensorParameters tensor);

    int passes();

    /**
     * Whether each pass must see every block of every tensor in order, through one accumulator (its sums are
     * not order-free); otherwise workers split the tensors and their accumulators are combined.
     */
    default boolean ordered() {
        return false;
    }

    TensorMerge.Accumulator accumulator(int pass);

    void endPass(int pass, List<TensorMerge.Accumulator> accumulators);

    /** The parameters of a tensor that {@link #reads} the result, with the result. */
    TensorParameters apply(TensorParameters tensor);
}
