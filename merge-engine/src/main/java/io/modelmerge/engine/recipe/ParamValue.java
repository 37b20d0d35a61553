package io.modelmerge.engine.recipe;

import java.util.List;
import java.util.Optional;

/**
 * A recipe parameter as mergekit accepts it: a scalar, a gradient (a list of numbers interpolated over the
 * layer position t in [0, 1]), or a filtered list ({@code [{filter: mlp, value: 0.5}, {value: 0}]}, the first
 * entry whose filter is a substring of the tensor name wins; an entry without filter, or with {@code "*"}, matches
 * everything), or a list of other scalars, stepped over t (element ⌊t·(n − 1)⌋, as mergekit's evaluate_setting).
 */
public sealed interface ParamValue {

    /** The value for tensor {@code tensorName} at layer position {@code t}; empty when no filter matches. */
    Optional<Object> at(String tensorName, double t);

    record Scalar(Object value) implements ParamValue {
        @Override
        public Optional<Object> at(String tensorName, double t) {
            return Optional.of(value);
        }
    }

    record Gradient(List<Double> points) implements ParamValue {
        public Gradient {
            points = List.copyOf(points);
            if (points.isEmpty()) {
                throw new IllegalArgumentException("A gradient needs at least one value");
            }
        }

        /** Linear interpolation between neighbouring points, as mergekit's evaluate_setting does. */
        @Override
        public Optional<Object> at(String tensorName, double t) {
            int span = points.size() - 1;
            if (span == 0) {
                return Optional.of(points.getFirst());
            }
            double scaled = Math.clamp(t, 0.0, 1.0) * span;
            int i0 = (int) Math.floor(scaled);
            int i1 = Math.min(span, i0 + 1);
            double frac = scaled - i0;
            return Optional.of((1 - frac) * points.get(i0) + frac * points.get(i1));
        }
    }

    /** A list of strings or booleans: element ⌊t·(n − 1)⌋, as mergekit picks one. */
    record Steps(List<Object> values) implements ParamValue {
        public Steps {
            values = List.copyOf(values);
            if (values.isEmpty()) {
                throw new IllegalArgumentException("A list of values needs at least one");
            }
        }

        @Override
        public Optional<Object> at(String tensorName, double t) {
            return Optional.of(values.get((int) (Math.clamp(t, 0.0, 1.0) * (values.size() - 1))));
        }
    }

    record Filter(Optional<String> filter, ParamValue value) {
    }

    record Filtered(List<Filter> entries) implements ParamValue {
        public Filtered {
            entries = List.copyOf(entries);
        }

        @Override
        public Optional<Object> at(String tensorName, double t) {
            for (Filter entry : entries) {
                if (entry.filter().isEmpty() || entry.filter().get().equals("*")
                        || tensorName.contains(entry.filter().get())) {
                    return entry.value().at(tensorName, t);
                }
            }
            return Optional.empty();
        }
    }
}
