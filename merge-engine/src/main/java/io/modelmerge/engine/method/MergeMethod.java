package io.modelmerge.engine.method;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Optional;

/**
 * A method that merges checkpoints tensor by tensor (one class each; stateless): the planner resolves its
 * parameters per tensor, and the executor streams each tensor's blocks through the {@link TensorMerge} it
 * prepares. When every model's {@link #companionParameter() companion} holds a tensor, the planner appends those
 * tensors after the models' in each {@link Block} and sets {@value #COMPANIONS_PRESENT} to true for it.
 */
public non-sealed interface MergeMethod extends RecipeMethod {

    /** Set by the planner per tensor: whether the companion inputs' tensors follow the models' in each block. */
    String COMPANIONS_PRESENT = "companions_present";

    /**
     * Refuses parameters this method cannot merge with (beyond their types, which the planner checks), before
     * any data is read: e.g. how many models it takes, or a value's range.
     */
    default void check(TensorParameters parameters) throws RecipeException {
    }

    /**
     * A statistic over the whole model this merge needs first, given every merged tensor's parameters (the pass
     * picks the tensors it reads); empty for most methods. Refuses parameters the statistic cannot be taken
     * with, before any data is read.
     */
    default Optional<ModelWidePass> modelWidePass(List<TensorParameters> tensors) throws RecipeException {
        return Optional.empty();
    }

    /** Prepares the merge of one tensor. */
    TensorMerge forTensor(TensorParameters parameters);
}
