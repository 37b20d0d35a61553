package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.FisherAverage;
import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Optional;

/**
 * {@code fisher}: Fisher-weighted averaging (Matena and Raffel, Merging Models with Fisher-Weighted Averaging):
 * θ = Σᵢ λᵢFᵢθᵢ / Σᵢ λᵢFᵢ per parameter, with each model's diagonal Fisher Fᵢ read from its {@code fisher}
 * input (a safetensors file set with the model's tensor names). {@code weight} is λᵢ (default 1).
 * {@code normalize_fishers} (default true) divides λᵢ by the L2 norm of Fᵢ over the whole model, as both
 * reference implementations do. {@code variant: original} (the authors' code, favor_target_model) floors the
 * first model's Fisher at {@code fisher_floor} (default 1e-6) and leaves the others; {@code mergelm} (MergeLM)
 * adds {@code fisher_floor} to every model's Fisher. Tensors some Fisher lacks are merged as the weighted
 * average Σλᵢθᵢ/Σλᵢ, and the merge's notes list them. A base model, if named, is merged like any other model.
 */
public final class FisherMerge implements MergeMethod {
    /** Set per model by the run when normalizing: the L2 norm of its Fisher over every tensor. */
    public static final String FISHER_NORM = "fisher_norm";

    /** Whose floor rule: the authors' code (the first model's Fisher floored) or MergeLM's (every Fisher's). */
    enum Implementation implements Variant {
        ORIGINAL, MERGELM
    }

    @Override
    public String name() {
        return "fisher";
    }

    @Override
    public boolean requiresBase() {
        return false;
    }

    @Override
    public Optional<String> companionParameter() {
        return Optional.of("fisher");
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return List.of(ParameterDef.number("weight", 1.0), ParameterDef.text("fisher"));
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of(ParameterDef.number("fisher_floor", 1e-6), ParameterDef.flag("normalize_fishers", true),
                ParameterDef.variant("variant", Implementation.ORIGINAL, Implementation.values()));
    }

    @Override
    public Optional<ModelWidePass> modelWidePass(List<TensorParameters> tensors) {
        return tensors.isEmpty() ? Optional.empty() : Optional.of(new FisherNorms(tensors.getFirst().models()));
    }

    @Override
    public void check(TensorParameters p) throws RecipeException {
        double floor = p.number("fisher_floor");
        if (!(floor >= 0)) {
            throw new RecipeException("fisher_floor " + floor + " for tensor '" + p.tensor() + "' is negative");
        }
        double sum = 0;
        for (int m = 0; m < p.models(); m++) {
            double w = p.modelNumber(m, "weight");
            if (w < 0) {
                throw new RecipeException("fisher weight " + w + " for tensor '" + p.tensor() + "' of model #" + (m + 1)
                        + " is negative; Fisher averaging takes weights >= 0");
            }
            sum += w;
        }
        if (sum <= 0) {
            throw new RecipeException("fisher weights for tensor '" + p.tensor() + "' sum to zero");
        }
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        int n = p.models();
        float[] lambda = new float[n];
        float[] coefficient = new float[n];
        double sum = 0;
        for (int m = 0; m < n; m++) {
            lambda[m] = (float) p.modelNumber(m, "weight");
            sum += lambda[m];
            boolean normalized = p.flag("normalize_fishers") && p.perModel().get(m).containsKey(FISHER_NORM);
            double norm = normalized ? p.modelNumber(m, FISHER_NORM) : 1;
            coefficient[m] = (float) (norm > 0 ? lambda[m] / norm : lambda[m]);
        }
        for (int m = 0; m < n; m++) {
            lambda[m] = (float) (lambda[m] / sum);
        }
        boolean present = Boolean.TRUE.equals(p.global().get(COMPANIONS_PRESENT));
        float floor = (float) p.number("fisher_floor");
        boolean original = p.variant("variant", Implementation.class) == Implementation.ORIGINAL;
        return (block, out) -> FisherAverage.of(block.models(), n, lambda, coefficient, present, floor, original, out,
                block.length());
    }
}
