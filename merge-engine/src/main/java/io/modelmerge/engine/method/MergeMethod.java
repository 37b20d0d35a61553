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
     * Set by the planner per tensor: the merge's notes, which a method adds to with {@link TensorParameters#note}
     * while it plans or merges (what the user should know, such as a fallback taken).
     */
    String NOTES = "notes";

    /** Set by the planner per tensor: how many dimensions it has (1 for a vector such as a norm's weight). */
    String TENSOR_RANK = "tensor_rank";

    /**
     * Set by the planner per tensor under {@code compute_dtype: recipe}: the {@code DType} mergekit computes this
     * tensor in (the recipe's dtype, else the input's). Inputs are rounded to it as they are read; a method whose
     * mergekit counterpart rounds its intermediate results rounds them too. Absent: F32 throughout.
     */
    String COMPUTE_DTYPE = "compute_dtype";

    /**
     * Bytes the method holds for one tensor while it merges it, beyond the work buffers (RegMean: the Grams and
     * their solve); the budget check counts them. 0 for most methods.
     */
    default long tensorStateBytes(TensorParameters parameters) {
        return 0;
    }

    /** Refuses a tensor merged from fewer than {@link #minModels} or more than {@link #maxModels} models. */
    default void checkModelCount(TensorParameters p) throws RecipeException {
        int models = p.models();
        if (models >= minModels() && models <= maxModels()) {
            return;
        }
        String count = minModels() == maxModels() ? "exactly " + models(minModels())
                : maxModels() == Integer.MAX_VALUE ? "at least " + models(minModels())
                : "from " + minModels() + " to " + models(maxModels());
        throw new RecipeException(name() + " merges " + count + (usesBase() ? " besides the base_model" : "")
                + " per tensor; tensor '" + p.tensor() + "' has " + models);
    }

    private static String models(int count) {
        String[] words = {"zero", "one", "two", "three"};
        return (count < words.length ? words[count] : String.valueOf(count)) + (count == 1 ? " model" : " models");
    }

    /**
     * Refuses parameters this method cannot merge with (beyond their types, which the planner checks), before
     * any data is read: e.g. a value's range. The model count is checked first, by {@link #checkModelCount}.
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
