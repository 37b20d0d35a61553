package io.modelmerge.engine.method;

import java.util.List;

/** A merge method as recipes name it ({@code merge_method}). One class each; stateless. */
public interface MergeMethod {

    /** The name recipes use, e.g. {@code ties}. */
    String name();

    /** Whether the recipe must name a {@code base_model} (task-vector methods subtract it). */
    boolean requiresBase();

    /** Parameters given per model ({@code weight}, {@code density}, ...), resolvable per tensor. */
    List<ParameterDef> modelParameters();

    /** Parameters given once for the merge ({@code normalize}, {@code lambda}, variants, ...). */
    List<ParameterDef> globalParameters();

    /** Prepares the merge of one tensor. */
    TensorMerge forTensor(TensorParameters parameters);
}
