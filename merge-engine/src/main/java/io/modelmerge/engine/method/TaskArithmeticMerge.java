package io.modelmerge.engine.method;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Optional;

/**
 * {@code task_arithmetic} (Ilharco et al.): θ = θ_base + λ Σ wᵢ(θᵢ − θ_base). Unlike mergekit, which ignores
 * it here, {@code density} is honoured: each task vector keeps its top-density fraction by magnitude first.
 * {@code normalize: true} divides by Σ wᵢ.
 */
public final class TaskArithmeticMerge extends TaskVectorMerge {

    @Override
    public String name() {
        return "task_arithmetic";
    }

    /** Dense in generated recipes: the plain sum of task vectors, which {@code magnitude_prune} trims. */
    private static final List<ParameterDef> PER_MODEL = List.of(ParameterDef.required("weight", 0.5),
            ParameterDef.DENSITY);

    @Override
    public List<ParameterDef> modelParameters() {
        return PER_MODEL;
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of(ParameterDef.flag("normalize", false), ParameterDef.number("lambda", 1.0), ParameterDef.TOPK_SCOPE,
                ParameterDef.INT8_MASK);
    }

    @Override
    public void check(TensorParameters p) throws RecipeException {
        if (p.flag("normalize")) {
            DividedWeights.check(p, name());
        }
    }

    @Override
    public Optional<ModelWidePass> modelWidePass(List<TensorParameters> tensors) throws RecipeException {
        return ModelWideTopK.of(tensors);
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        return GeneralizedTaskArithmetic.forTensor(p, GeneralizedTaskArithmetic.Sparsification.MAGNITUDE, "none",
                p.flag("normalize"), p.number("lambda"), "none");
    }
}
