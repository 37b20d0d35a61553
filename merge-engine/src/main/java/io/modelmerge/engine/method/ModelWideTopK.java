package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.TopK;
import io.modelmerge.engine.recipe.RecipeException;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * {@code topk_scope: model} (TIES paper, MergeLM, FusionBench): per model, one |δ| threshold over all the tensors
 * trimmed by magnitude, found by the two radix-select rounds of {@link TopK} over the whole model, and given to
 * every such tensor so none selects its own. Needs one density per model across those tensors.
 */
final class ModelWideTopK implements ModelWidePass {
    private final TopK[] selection;
    private final Float[] thresholds;

    private ModelWideTopK(double[] density, long total) {
        int n = density.length;
        this.selection = new TopK[n];
        this.thresholds = new Float[n];
        for (int m = 0; m < n; m++) {
            long k = (long) Math.floor(density[m] * total);
            if (density[m] >= 1) {
                thresholds[m] = 0f;
            } else if (k == 0) {
                thresholds[m] = Float.POSITIVE_INFINITY;
            } else {
                selection[m] = new TopK(k);
            }
        }
    }

    /** The pass for the tensors among {@code tensors} that ask for it; empty when none does. */
    static Optional<ModelWidePass> of(List<TensorParameters> tensors) throws RecipeException {
        List<TensorParameters> scoped = tensors.stream().filter(ModelWideTopK::scoped).toList();
        if (scoped.isEmpty()) {
            return Optional.empty();
        }
        TensorParameters first = scoped.getFirst();
        double[] density = first.modelNumbers("density");
        long total = 0;
        for (TensorParameters t : scoped) {
            total += t.elements();
            double[] own = t.modelNumbers("density");
            for (int m = 0; m < density.length; m++) {
                if (own[m] != density[m]) {
                    throw new RecipeException("topk_scope: model needs one density per model, but model #" + (m + 1)
                            + " has " + density[m] + " for '" + first.tensor() + "' and " + own[m] + " for '"
                            + t.tensor() + "'");
                }
            }
        }
        return Optional.of(new ModelWideTopK(density, total));
    }

    private static boolean scoped(TensorParameters p) {
        return p.variant(ParameterDef.TOPK_SCOPE.name(), TopKScope.class) == TopKScope.MODEL;
    }

    @Override
    public boolean reads(TensorParameters tensor) {
        return scoped(tensor);
    }

    @Override
    public Optional<Pass<?>> nextPass() {
        return new TaskVectorSelections(selection).nextPass("model-wide magnitude thresholds", () -> {
            for (int m = 0; m < selection.length; m++) {
                if (selection[m] != null) {
                    thresholds[m] = selection[m].threshold();
                }
            }
        });
    }

    @Override
    public TensorParameters apply(TensorParameters tensor) {
        return tensor.withModelThresholds(Arrays.asList(thresholds));
    }

    /** Each model's threshold (floats, exactly as doubles). */
    @Override
    public double[] result() {
        double[] out = new double[thresholds.length];
        for (int m = 0; m < out.length; m++) {
            out[m] = thresholds[m];
        }
        return out;
    }

    @Override
    public void restore(double[] result) {
        if (result.length != thresholds.length) {
            throw new IllegalArgumentException("model-wide thresholds for " + result.length + " models, expected "
                    + thresholds.length);
        }
        for (int m = 0; m < result.length; m++) {
            thresholds[m] = (float) result[m];
            selection[m] = null;
        }
    }
}
