package io.modelmerge.engine.method;

import java.util.List;

/**
 * {@code passthrough}: each output tensor is one input tensor, multiplied by its {@code scale} (default 1;
 * filtered per tensor name, e.g. {@code scale: [{filter: o_proj, value: 0.0}, {value: 1.0}]}), as mergekit's
 * passthrough.py. With {@code slices} it stacks layer ranges of models into a new model (frankenmerges, depth
 * up-scaling): every slice names exactly one source.
 */
public final class PassthroughMerge implements MergeMethod {

    @Override
    public String name() {
        return "passthrough";
    }

    @Override
    public boolean requiresBase() {
        return false;
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return List.of(ParameterDef.number("scale", 1.0));
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of();
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
    public TensorMerge forTensor(TensorParameters p) {
        float scale = (float) p.modelNumber(0, "scale");
        return (block, out) -> {
            float[] x = block.models()[0];
            for (int i = 0; i < block.length(); i++) {
                out[i] = scale * x[i];
            }
        };
    }
}
