package io.modelmerge.engine.method;

import java.util.List;
import java.util.Optional;

/**
 * A parameter a merge method takes: its name, its default (empty: required), and what values it accepts.
 *
 * @param choices for a string parameter, the accepted values; empty for numbers and booleans
 * @param example the value a generated recipe gives it (a benchmark's, a template's) where its default would not
 *                show the method at work, e.g. a density below 1; required parameters always have one
 */
public record ParameterDef(String name, Optional<Object> defaultValue, Class<?> type, List<String> choices,
                           Optional<Object> example) {

    public ParameterDef {
        choices = List.copyOf(choices);
        if (defaultValue.isEmpty() && example.isEmpty()) {
            throw new IllegalArgumentException("required parameter '" + name + "' needs an example value");
        }
    }

    public ParameterDef(String name, Optional<Object> defaultValue, Class<?> type, List<String> choices) {
        this(name, defaultValue, type, choices, defaultValue);
    }

    /** This parameter, given {@code value} in generated recipes. */
    public ParameterDef withExample(Object value) {
        return new ParameterDef(name, defaultValue, type, choices, Optional.of(value));
    }

    /** Whether generated recipes give this parameter a value of their own rather than leave its default. */
    public boolean exampleDiffersFromDefault() {
        return !example.equals(defaultValue);
    }

    /**
     * Where magnitude top-k is taken: {@code tensor} (mergekit, PEFT: each tensor keeps its top density) or
     * {@code model} (TIES paper, MergeLM, FusionBench: one threshold per model over all its tensors).
     */
    public static final ParameterDef TOPK_SCOPE = choice("topk_scope", "tensor", "tensor", "model");

    /** TIES' sign election: {@code mergekit} (weighted deltas) or {@code paper} (unweighted; PEFT). */
    public static final ParameterDef ELECTION = new ParameterDef("election", Optional.of("mergekit"), String.class,
            List.of("mergekit", "paper"));

    /** A number a recipe must give; {@code example} is the value generated recipes give it. */
    public static ParameterDef required(String name, double example) {
        return new ParameterDef(name, Optional.empty(), Double.class, List.of(), Optional.of(example));
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
