package io.modelmerge.engine.method;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;

/** A merge method as recipes name it ({@code merge_method}). One class each; stateless. */
public interface MergeMethod {

    /** The name recipes use, e.g. {@code ties}. */
    String name();

    /** Whether the recipe must name a {@code base_model} (task-vector methods subtract it). */
    boolean requiresBase();

    /**
     * Whether a named {@code base_model} is subtracted (rather than merged like any other model): true for the
     * methods that require one, and for those that take one optionally (nuslerp, multislerp).
     */
    default boolean usesBase() {
        return requiresBase();
    }

    /**
     * The per-model parameter (one of {@link io.modelmerge.engine.recipe.Recipe#COMPANION_PARAMETERS}) naming a
     * second input per model whose tensors of the same names the method reads too; empty for most methods.
     * When every model's companion holds a tensor, the planner appends those tensors after the models' in each
     * {@link Block} and sets the global parameter {@value #COMPANIONS_PRESENT} to true for that tensor.
     */
    default java.util.Optional<String> companionParameter() {
        return java.util.Optional.empty();
    }

    /** Set by the planner per tensor: whether the companion inputs' tensors follow the models' in each block. */
    String COMPANIONS_PRESENT = "companions_present";

    /** Parameters given per model ({@code weight}, {@code density}, ...), resolvable per tensor. */
    List<ParameterDef> modelParameters();

    /** Parameters given once for the merge ({@code normalize}, {@code lambda}, variants, ...). */
    List<ParameterDef> globalParameters();

    /**
     * Refuses parameters this method cannot merge with (beyond their types, which the planner checks), before
     * any data is read: e.g. how many models it takes, or a value's range.
     */
    default void check(TensorParameters parameters) throws RecipeException {
    }

    /** Prepares the merge of one tensor. */
    TensorMerge forTensor(TensorParameters parameters);
}
