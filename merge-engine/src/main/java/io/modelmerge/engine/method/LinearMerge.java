package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.kernel.WeightedSums;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.storage.safetensors.DType;
import java.util.List;

/**
 * {@code linear}: the weighted average Σ wᵢθᵢ / Σ wᵢ (model soups; equal weights give the uniform soup), as
 * mergekit's linear.py, in its order of operations: the products wᵢθᵢ summed, then divided by Σ wᵢ once (so an
 * F32 merge agrees with mergekit's bit for bit, rounding midpoints included). With {@code normalize: false} the
 * weighted sum is not divided. A base model, if named, is one of the averaged models like any other. Under
 * {@code compute_dtype: recipe} in a 16-bit dtype, the weights, products, sum and quotient are each rounded to
 * it, as torch rounds them in mergekit.
 */
public final class LinearMerge implements MergeMethod {

    @Override
    public String name() {
        return "linear";
    }

    @Override
    public boolean requiresBase() {
        return false;
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return List.of(ParameterDef.required("weight", 1.0));
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of(ParameterDef.flag("normalize", true));
    }

    @Override
    public void check(TensorParameters p) throws RecipeException {
        DividedWeights.checkWhenNormalizing(p, name());
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        DType dtype = p.global().get(COMPUTE_DTYPE) instanceof DType d ? d : DType.F32;
        int n = p.models();
        float[] weights = new float[n];
        float sum = 0;
        for (int m = 0; m < n; m++) {
            weights[m] = Floats.round((float) p.modelNumber(m, "weight"), dtype);
            sum += weights[m];
        }
        float divisor = p.flag("normalize") ? Floats.round(sum, dtype) : 1f;
        if (dtype != DType.F32) {
            return (block, out) -> WeightedSums.sumOfProducts(block.models(), weights, divisor, out, block.length(), dtype);
        }
        return (block, out) -> WeightedSums.sumOfProducts(block.models(), weights, divisor, out, block.length());
    }
}
