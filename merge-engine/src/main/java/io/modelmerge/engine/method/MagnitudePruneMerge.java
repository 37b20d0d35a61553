package io.modelmerge.engine.method;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Optional;

/**
 * {@code magnitude_prune}: each task vector keeps its top-density entries by magnitude (no sign election);
 * the pruned task vectors are averaged with their weights (Σ wᵢτᵢ / Σ wᵢ, {@code normalize: false} to only
 * sum them), scaled by λ and added to the base. TIES without the election step.
 */
public final class MagnitudePruneMerge extends TaskVectorMerge {

    @Override
    public String name() {
        return "magnitude_prune";
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of(ParameterDef.flag("normalize", true), ParameterDef.number("lambda", 1.0), ParameterDef.TOPK_SCOPE,
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
