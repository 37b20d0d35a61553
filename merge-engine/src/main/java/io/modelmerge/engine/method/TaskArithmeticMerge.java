package io.modelmerge.engine.method;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Optional;

/**
 * {@code task_arithmetic} (Ilharco et al.): θ = θ_base + λ Σ wᵢ(θᵢ − θ_base); and {@code magnitude_prune}, the
 * same with each task vector first trimmed to its top-density entries by magnitude and the sum averaged by the
 * weights (TIES without the election step). They differ only in their defaults: {@code normalize} (divide by
 * Σ wᵢ) is off for task_arithmetic and on for magnitude_prune, and generated recipes trim only with the latter.
 * Unlike mergekit, which ignores it in task_arithmetic, {@code density} is honoured by both.
 */
public final class TaskArithmeticMerge extends TaskVectorMerge {
    /** Dense in generated recipes: the plain sum of task vectors, which {@code magnitude_prune} trims. */
    private static final List<ParameterDef> DENSE = List.of(ParameterDef.required("weight", 0.5), ParameterDef.DENSITY);

    private final boolean pruned;

    /** @param pruned {@code magnitude_prune} rather than {@code task_arithmetic} */
    public TaskArithmeticMerge(boolean pruned) {
        this.pruned = pruned;
    }

    @Override
    public String name() {
        return pruned ? "magnitude_prune" : "task_arithmetic";
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return pruned ? super.modelParameters() : DENSE;
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of(ParameterDef.flag("normalize", pruned), ParameterDef.number("lambda", 1.0),
                ParameterDef.TOPK_SCOPE, ParameterDef.INT8_MASK, ParameterDef.MAGNITUDE_RESCALE,
                ParameterDef.THRESHOLD_TIES);
    }

    @Override
    public void check(TensorParameters p) throws RecipeException {
        DividedWeights.checkWhenNormalizing(p, name());
    }

    @Override
    public Optional<ModelWidePass> modelWidePass(List<TensorParameters> tensors) throws RecipeException {
        return ModelWideTopK.of(tensors);
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        return GeneralizedTaskArithmetic.forTensor(p, GeneralizedTaskArithmetic.Sparsification.MAGNITUDE,
                Election.NONE, p.flag("normalize"), p.number("lambda"),
                p.variant("rescale", Rescale.class));
    }
}
