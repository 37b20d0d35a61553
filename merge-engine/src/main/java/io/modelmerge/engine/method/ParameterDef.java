package io.modelmerge.engine.method;

import java.util.List;
import java.util.Optional;

/**
 * A parameter a merge method takes: its name, its default (empty: required), and what values it accepts.
 *
 * @param choices for a string parameter, the accepted values; empty for numbers and booleans
 */
public record ParameterDef(String name, Optional<Object> defaultValue, Class<?> type, List<String> choices) {

    public ParameterDef {
        choices = List.copyOf(choices);
    }

    /**
     * Where magnitude top-k is taken: {@code tensor} (mergekit, PEFT: each tensor keeps its top density) or
     * {@code model} (TIES paper, MergeLM, FusionBench: one threshold per model over all its tensors).
     */
    public static final ParameterDef TOPK_SCOPE = choice("topk_scope", "tensor", "tensor", "model");

    /** TIES' sign election: {@code mergekit} (weighted deltas) or {@code paper} (unweighted; PEFT). */
    public static final ParameterDef ELECTION = new ParameterDef("election", Optional.of("mergekit"), String.class,
            List.of("mergekit", "paper"));

    public static ParameterDef required(String name) {
        return new ParameterDef(name, Optional.empty(), Double.class, List.of());
    }

    public static ParameterDef number(String name, double defaultValue) {
        return new ParameterDef(name, Optional.of(defaultValue), Double.class, List.of());
    }

    public static ParameterDef flag(String name, boolean defaultValue) {
        return new ParameterDef(name, Optional.of(defaultValue), Boolean.class, List.of());
    }

    /** A string parameter (a reference to another input), empty when not given. */
    public static ParameterDef text(String name) {
        return new ParameterDef(name, Optional.of(""), String.class, List.of());
    }

    public static ParameterDef choice(String name, String defaultValue, String... choices) {
        return new ParameterDef(name, Optional.of(defaultValue), String.class, List.of(choices));
    }
}
