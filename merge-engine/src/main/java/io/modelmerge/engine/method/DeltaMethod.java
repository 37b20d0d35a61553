package io.modelmerge.engine.method;

import io.modelmerge.engine.delta.DeltaEdit;
import java.util.List;

/**
 * Delta editing as a recipe ({@code delta_extract}, {@code delta_sparsify}, {@code delta_bitdelta},
 * {@code delta_lowrank}): the base_model is the base and the one model the fine-tune; the output is a stored delta
 * (a PEFT adapter for {@code delta_lowrank}). As recipes they go through everything merges go through: the merge
 * service's queue, leases, retries, idempotency, pinning and registration, and {@code mergectl merge}/{@code submit}.
 */
public record DeltaMethod(String name, Kind kind, List<ParameterDef> globalParameters) implements RecipeMethod {

    /** The operation. */
    public enum Kind { EXTRACT, SPARSIFY, BITDELTA, LOWRANK }

    /** {@code delta_sparsify}'s rule: a random drop (DARE) or the top by magnitude. */
    public enum Sparsifier implements Variant { DARE, MAGNITUDE }

    /** How DARE scales what it keeps: 1/(1 − p) (the paper), keeping the L1 norm (mergekit), or not. */
    public enum DareScale implements Variant { INVERSE, L1, NONE }

    /** Where a magnitude top-k or a BitDelta scale is taken. */
    public enum Within implements Variant { TENSOR, ROW }

    public static final DeltaMethod EXTRACT = new DeltaMethod("delta_extract", Kind.EXTRACT, List.of());
    public static final DeltaMethod SPARSIFY = new DeltaMethod("delta_sparsify", Kind.SPARSIFY, List.of(
            ParameterDef.variant("method", Sparsifier.DARE, Sparsifier.values()),
            ParameterDef.number("p", 0.9).within(new ParameterDef.Range(0, true, 1, false)),
            ParameterDef.variant("rescale", DareScale.INVERSE, DareScale.values()),
            ParameterDef.number("density", 0.1).within(new ParameterDef.Range(0, false, 1, true)),
            ParameterDef.variant("scope", Within.TENSOR, Within.values())));
    public static final DeltaMethod BITDELTA = new DeltaMethod("delta_bitdelta", Kind.BITDELTA, List.of(
            ParameterDef.variant("scope", Within.TENSOR, Within.values()),
            ParameterDef.text("include"),
            ParameterDef.text("exclude", DeltaEdit.EMBEDDINGS_AND_HEADS.pattern())));
    public static final DeltaMethod LOWRANK = new DeltaMethod("delta_lowrank", Kind.LOWRANK, List.of(
            ParameterDef.number("max_rank", 32).within(new ParameterDef.Range(1, true, Integer.MAX_VALUE, true)),
            ParameterDef.number("sv_epsilon", 0).within(new ParameterDef.Range(0, true, Double.MAX_VALUE, true)),
            ParameterDef.number("energy", 0).within(new ParameterDef.Range(0, true, 1, true)),
            ParameterDef.text("include"),
            ParameterDef.text("exclude", DeltaEdit.EMBEDDINGS_AND_HEADS.pattern())));

    public DeltaMethod {
        globalParameters = List.copyOf(globalParameters);
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
}
