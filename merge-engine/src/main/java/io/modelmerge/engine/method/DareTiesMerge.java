package io.modelmerge.engine.method;

import java.util.List;

/**
 * {@code dare_ties}: DARE's random drop and rescale (see {@link DareLinearMerge}), then TIES' sign election
 * ({@code election: mergekit | paper}, see {@link TiesMerge}).
 */
public final class DareTiesMerge extends TaskVectorMerge {

    /** mergekit spells it {@code rescale: true|false}; we also name the variant. */
    static final ParameterDef RESCALE = new ParameterDef("rescale", java.util.Optional.of("l1"), Object.class,
            List.of("l1", "inverse_density", "none", "true", "false"));

    /** The rescale variant named, mergekit's {@code true}/{@code false} read as {@code l1}/{@code none}. */
    static String rescale(TensorParameters p) {
        String value = String.valueOf(p.global().get("rescale"));
        return switch (value) {
            case "true" -> "l1";
            case "false" -> "none";
            default -> value;
        };
    }

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
                p.choice("election"), p.flag("normalize"), p.number("lambda"), rescale(p));
    }
}
