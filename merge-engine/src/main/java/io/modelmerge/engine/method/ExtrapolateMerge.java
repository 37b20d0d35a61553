package io.modelmerge.engine.method;

import java.util.List;

/**
 * {@code extrapolate} (ExPO, Zheng et al., "Weak-to-Strong Extrapolation Expedites Alignment"): from an SFT
 * model (the base_model) and its aligned successor (the one model), θ = θ_aligned + α·(θ_aligned − θ_sft), one
 * step further along the alignment direction. {@code alpha} may be a gradient or filtered per layer like any
 * global parameter, so only some layers are extrapolated; where it is 0 the aligned model is returned as it is.
 */
public final class ExtrapolateMerge implements MergeMethod {

    @Override
    public String name() {
        return "extrapolate";
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
        return List.of(ParameterDef.required("alpha", 0.3));
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        float alpha = (float) p.number("alpha");
        return (block, out) -> {
            float[] sft = block.base();
            float[] aligned = block.models()[0];
            if (alpha == 0) {
                System.arraycopy(aligned, 0, out, 0, block.length());
                return;
            }
            for (int i = 0; i < block.length(); i++) {
                out[i] = aligned[i] + alpha * (aligned[i] - sft[i]);
            }
        };
    }
}
