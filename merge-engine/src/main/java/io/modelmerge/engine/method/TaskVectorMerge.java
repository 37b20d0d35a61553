package io.modelmerge.engine.method;

import java.util.List;

/**
 * What the task-vector methods share: they subtract a base model, and take a {@code weight} and a
 * {@code density} per model. Each subclass is one recipe method: its merge-wide parameters and how it
 * configures {@link GeneralizedTaskArithmetic}.
 */
abstract class TaskVectorMerge implements MergeMethod {
    /** What the sparsifying methods take per model: generated recipes keep half of each task vector. */
    private static final List<ParameterDef> PER_MODEL = List.of(ParameterDef.required("weight", 0.5),
            ParameterDef.DENSITY.withExample(0.5));

    @Override
    public final boolean requiresBase() {
        return true;
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return PER_MODEL;
    }
}
