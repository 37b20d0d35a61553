package io.modelmerge.engine.method;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;

/**
 * {@code dare_linear} (Yu et al., DARE): drop each task-vector entry with probability 1 − density, rescale
 * what is kept, and add the weighted sum to the base. {@code rescale: l1} (default, mergekit) keeps each task
 * vector's L1 norm; {@code rescale: inverse_density} divides by the density (DARE paper, PEFT);
 * {@code rescale: none} does not rescale.
 */
public final class DareLinearMerge extends TaskVectorMerge {

    @Override
    public String name() {
        return "dare_linear";
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of(ParameterDef.flag("normalize", false), ParameterDef.number("lambda", 1.0),
                DareTiesMerge.RESCALE, ParameterDef.INT8_MASK);
    }

    @Override
    public void check(TensorParameters p) throws RecipeException {
        DividedWeights.checkWhenNormalizing(p, name());
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        return GeneralizedTaskArithmetic.forTensor(p, GeneralizedTaskArithmetic.Sparsification.RANDOM, Election.NONE,
                p.flag("normalize"), p.number("lambda"), p.variant("rescale", Rescale.class));
    }
}
