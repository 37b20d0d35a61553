package io.modelmerge.engine.method;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Optional;

/**
 * {@code ties} (Yadav et al., TIES-Merging): trim each task vector to its top-density entries by magnitude
 * (per tensor, as mergekit and PEFT do), elect a sign per entry, keep the entries that agree, and merge them.
 * {@code election: mergekit} (default) elects on weighted deltas and divides by the agreeing weights;
 * {@code election: paper} elects on unweighted deltas and divides by the number of agreeing models (PEFT).
 * {@code topk_scope: model} trims with one threshold per model over the whole model, as the paper, MergeLM
 * and FusionBench do; the default {@code tensor} trims each tensor on its own (mergekit, PEFT).
 */
public final class TiesMerge extends TaskVectorMerge {

    @Override
    public String name() {
        return "ties";
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of(ParameterDef.flag("normalize", true), ParameterDef.number("lambda", 1.0),
                ParameterDef.ELECTION,
                ParameterDef.INT8_MASK,
                ParameterDef.TOPK_SCOPE, ParameterDef.MAGNITUDE_RESCALE, ParameterDef.THRESHOLD_TIES);
    }

    @Override
    public Optional<ModelWidePass> modelWidePass(List<TensorParameters> tensors) throws RecipeException {
        return ModelWideTopK.of(tensors);
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        return GeneralizedTaskArithmetic.forTensor(p, GeneralizedTaskArithmetic.Sparsification.MAGNITUDE,
                p.variant("election", Election.class), p.flag("normalize"), p.number("lambda"),
                p.variant("rescale", Rescale.class));
    }
}
