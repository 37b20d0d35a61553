package io.modelmerge.engine.method;

import java.util.List;
import java.util.Optional;

/**
 * A parameter a merge method takes: its name, its default (empty: required), and what values it accepts.
 *
 * @param choices for a string parameter, the accepted values; empty for numbers and booleans
 * @param example the value a generated recipe gives it (a benchmark's, a template's) where its default would not
 *                show the method at work, e.g. a density below 1; required parameters always have one
 * @param range   for a number, the values it may take; the planner refuses others, naming the tensor and model
 */
public record ParameterDef(String name, Optional<Object> defaultValue, Class<?> type, List<String> choices,
                           Optional<Object> example, Optional<Range> range) {

    /** An interval of numbers, each end open or closed. */
    public record Range(double min, boolean minIncluded, double max, boolean maxIncluded) {
        public boolean contains(double x) {
            return (minIncluded ? x >= min : x > min) && (maxIncluded ? x <= max : x < max);
        }

        @Override
        public String toString() {
            return (minIncluded ? "[" : "(") + number(min) + ", " + number(max) + (maxIncluded ? "]" : ")");
        }

        private static String number(double x) {
            return x == Math.rint(x) && Math.abs(x) < 1e15 ? String.valueOf((long) x) : String.valueOf(x);
        }
    }

    public ParameterDef {
        choices = List.copyOf(choices);
        if (defaultValue.isEmpty() && example.isEmpty()) {
            throw new IllegalArgumentException("required parameter '" + name + "' needs an example value");
        }
    }

    private ParameterDef(String name, Optional<Object> defaultValue, Class<?> type, List<String> choices) {
        this(name, defaultValue, type, choices, defaultValue, Optional.empty());
    }

    /** This parameter, given {@code value} in generated recipes. */
    public ParameterDef withExample(Object value) {
        return new ParameterDef(name, defaultValue, type, choices, Optional.of(value), range);
    }

    /** This parameter, refused outside {@code allowed}. */
    public ParameterDef within(Range allowed) {
        return new ParameterDef(name, defaultValue, type, choices, example, Optional.of(allowed));
    }

    /** Whether generated recipes give this parameter a value of their own rather than leave its default. */
    public boolean exampleDiffersFromDefault() {
        return !example.equals(defaultValue);
    }

    /** Where magnitude top-k is taken ({@link TopKScope}). */
    public static final ParameterDef TOPK_SCOPE = variant("topk_scope", TopKScope.TENSOR, TopKScope.values());

    /** The fraction of each task vector kept, in (0, 1]. */
    public static final ParameterDef DENSITY = number("density", 1.0).within(new Range(0, false, 1, true));

    /**
     * mergekit's switch to hold sign masks as int8 to save memory; accepted wherever mergekit accepts it (its
     * task-vector methods and sce) and changes nothing here, where masks are never materialised.
     */
    public static final ParameterDef INT8_MASK = flag("int8_mask", false);

    /**
     * mergekit's {@code rescale} on the magnitude methods: {@code l1} ({@code true}) scales the kept entries so each
     * task vector keeps its L1 norm; {@code none} ({@code false}, the default) leaves them.
     */
    public static final ParameterDef MAGNITUDE_RESCALE = variant("rescale", Rescale.NONE, Rescale.NONE, Rescale.L1);

    /** Entries tied with a per-tensor top-k threshold: exactly k kept, by position, or all ({@link ThresholdTies}). */
    public static final ParameterDef THRESHOLD_TIES = variant("threshold_ties", ThresholdTies.POSITION,
            ThresholdTies.values());

    /** TIES' sign election: {@code mergekit} (weighted deltas) or {@code paper} (unweighted; PEFT). */
    public static final ParameterDef ELECTION = variant("election", Election.MERGEKIT, Election.MERGEKIT,
            Election.PAPER);

    /** A number a recipe must give; {@code example} is the value generated recipes give it. */
    public static ParameterDef required(String name, double example) {
        return new ParameterDef(name, Optional.empty(), Double.class, List.of(), Optional.of(example), Optional.empty());
    }

    public static ParameterDef number(String name, double defaultValue) {
        return new ParameterDef(name, Optional.of(defaultValue), Double.class, List.of());
    }

    public static ParameterDef flag(String name, boolean defaultValue) {
        return new ParameterDef(name, Optional.of(defaultValue), Boolean.class, List.of());
    }

    /** A string parameter (a reference to another input), empty when not given. */
    public static ParameterDef text(String name) {
        return text(name, "");
    }

    /** A string parameter, {@code defaultValue} when not given. */
    public static ParameterDef text(String name, String defaultValue) {
        return new ParameterDef(name, Optional.of(defaultValue), String.class, List.of());
    }

    /** A variant among {@code allowed}, by any of their spellings; read back with {@link TensorParameters#variant}. */
    @SafeVarargs
    public static <E extends Enum<E> & Variant> ParameterDef variant(String name, E defaultValue, E... allowed) {
        List<String> spellings = new java.util.ArrayList<>();
        for (E e : allowed) {
            spellings.addAll(e.spellings());
        }
        return new ParameterDef(name, Optional.of(defaultValue.spellings().getFirst()), String.class, spellings);
    }
}
