package io.modelmerge.engine.method;

import java.util.List;

/**
 * {@code dare_ties}: DARE's random drop and rescale (see {@link DareLinearMerge}), then TIES' sign election
 * ({@code election: mergekit | paper}, see {@link TiesMerge}).
 */
public final class DareTiesMerge extends TaskVectorMerge {

    /** mergekit spells it {@code rescale: true|false}; we also name the variant. */
    static final ParameterDef RESCALE = ParameterDef.variant("rescale", Rescale.L1, Rescale.L1, Rescale.INVERSE_DENSITY,
            Rescale.NONE);

    @Override
    public String name() {
        return "dare_ties";
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of(ParameterDef.flag("normalize", false), ParameterDef.number("lambda", 1.0),
                ParameterDef.ELECTION, RESCALE,
                ParameterDef.INT8_MASK);
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        return GeneralizedTaskArithmetic.forTensor(p, GeneralizedTaskArithmetic.Sparsification.RANDOM,
                p.variant("election", Election.class), p.flag("normalize"), p.number("lambda"),
                p.variant("rescale", Rescale.class));
    }
}
