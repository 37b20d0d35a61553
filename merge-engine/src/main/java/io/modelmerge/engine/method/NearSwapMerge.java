package io.modelmerge.engine.method;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;

/**
 * {@code nearswap} (mergekit's nearswap.py, after alchemonaut's QuartetAnemoi): takes the other model's value
 * where it is near the base's and keeps the base's where they differ much. Per element, with a the base and b the
 * other model: w = clamp(t / |a − b|, 0, 1) (1 where a = b), out = w·b + (1 − w)·a. The sameness threshold
 * {@code t} must be positive; it may be a gradient over the layers like any global parameter.
 */
public final class NearSwapMerge implements MergeMethod {

    @Override
    public String name() {
        return "nearswap";
    }

    @Override
    public boolean requiresBase() {
        return true;
    }

    @Override
    public int minModels() {
        return 1;
    }

    @Override
    public int maxModels() {
        return 1;
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return List.of();
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of(ParameterDef.required("t", 0.001));
    }

    @Override
    public void check(TensorParameters p) throws RecipeException {
        double t = p.number("t");
        if (!(t > 0)) {
            throw new RecipeException("t " + t + " for tensor '" + p.tensor() + "' must be positive (the sameness"
                    + " threshold)");
        }
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        float t = (float) p.number("t");
        return (block, out) -> {
            float[] a = block.base();
            float[] b = block.models()[0];
            for (int i = 0; i < block.length(); i++) {
                out[i] = swap(t, a[i], b[i]);
            }
        };
    }

    /** One element, in F32 as mergekit computes it: t/0 and its NaN count as 1. */
    static float swap(float t, float a, float b) {
        float w = t / Math.abs(a - b);
        w = Float.isNaN(w) || Float.isInfinite(w) ? 1f : Math.min(Math.max(w, 0f), 1f);
        return w * b + (1 - w) * a;
    }
}
