package io.modelmerge.engine.method;

import java.util.List;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@code linear}: the weighted average Σ wᵢθᵢ / Σ wᵢ (model soups; equal weights give the uniform soup), as
 * mergekit's linear.py. With {@code normalize: false} the weighted sum is not divided. A base model, if named,
 * is one of the averaged models like any other.
 */
public final class LinearMerge implements MergeMethod {

    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;

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
    public TensorMerge forTensor(TensorParameters p) {
        int n = p.models();
        float[] weights = new float[n];
        double sum = 0;
        for (int m = 0; m < n; m++) {
            weights[m] = (float) p.modelNumber(m, "weight");
            sum += weights[m];
        }
        if (p.flag("normalize")) {
            for (int m = 0; m < n; m++) {
                weights[m] = (float) (weights[m] / sum);
            }
        }
        return (block, out) -> {
            int length = block.length();
            int i = 0;
            for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
                average(block.models(), weights, out, i, FS.maskAll(true));
            }
            if (i < length) {
                average(block.models(), weights, out, i, FS.indexInRange(i, length));
            }
        };
    }

    private static void average(float[][] models, float[] weights, float[] out, int i, VectorMask<Float> lanes) {
        FloatVector acc = FloatVector.zero(FS);
        for (int m = 0; m < models.length; m++) {
            acc = FloatVector.fromArray(FS, models[m], i, lanes).fma(FloatVector.broadcast(FS, weights[m]), acc);
        }
        acc.intoArray(out, i, lanes);
    }
}
