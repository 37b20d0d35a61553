package io.modelmerge.engine.method;

import java.util.List;

/**
 * What the task-vector methods share: they subtract a base model, and take a {@code weight} and a
 * {@code density} per model. Each subclass is one recipe method: its merge-wide parameters and how it
 * configures {@link GeneralizedTaskArithmetic}.
 */
abstract class TaskVectorMerge implements MergeMethod {
    private static final List<ParameterDef> PER_MODEL = List.of(ParameterDef.required("weight"),
            ParameterDef.number("density", 1.0));

    @Override
    public final boolean requiresBase() {
        return true;
    }

    @Override
    public final List<ParameterDef> modelParameters() {
        return PER_MODEL;
    }
}
