package io.modelmerge.engine.method;

import java.util.List;
import java.util.Optional;

/**
 * What a recipe's {@code merge_method} names, and everything it declares about itself: whether it takes a base,
 * how many models, which parameters (with their defaults and example values), which companion input per model.
 * The planner, the checks and generated recipes (a benchmark's, a template's) read these instead of naming any
 * one method. Four kinds: {@link MergeMethod}s combine checkpoints tensor by tensor; {@link AdapterMethod}s
 * combine whole PEFT LoRA adapters into one adapter; {@link DeltaMethod}s store a fine-tune as its delta;
 * {@link SearchMethod}s choose a merge by scoring candidates with an evaluator.
 */
public sealed interface RecipeMethod permits MergeMethod, AdapterMethod, DeltaMethod, SearchMethod {

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

    /** The fewest models it merges besides the base (slerp: 1, model_stock: 2); most methods take any number. */
    default int minModels() {
        return 0;
    }

    /** The most models it merges besides the base (slerp: 1, nuslerp: 2); most methods take any number. */
    default int maxModels() {
        return Integer.MAX_VALUE;
    }

    /** Parameters given per model ({@code weight}, {@code density}, ...), resolvable per tensor. */
    List<ParameterDef> modelParameters();

    /** Parameters given once for the merge ({@code normalize}, {@code lambda}, variants, ...). */
    List<ParameterDef> globalParameters();

    /**
     * Why a recipe for this method cannot be made from checkpoints alone (as {@code mergectl bench} makes them):
     * it combines adapters, or reads data statistics no checkpoint holds; empty for most methods.
     */
    default Optional<String> needsMoreThanCheckpoints() {
        return Optional.empty();
    }

    /**
     * The per-model parameter naming a second input per model whose tensors of the same names the method reads
     * too (today {@code fisher}); empty for most methods.
     */
    default Optional<String> companionParameter() {
        return Optional.empty();
    }

    /**
     * The per-model parameters whose values name inputs (a registry ref or a location) that are pinned and
     * relocated like models: the companion, and any the method reads itself ({@code regmean}'s Grams).
     */
    default List<String> inputParameters() {
        return companionParameter().stream().toList();
    }
}
