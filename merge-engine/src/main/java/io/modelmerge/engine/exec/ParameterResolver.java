package io.modelmerge.engine.exec;

import io.modelmerge.engine.method.ParameterDef;
import io.modelmerge.engine.method.RecipeMethod;
import io.modelmerge.engine.recipe.ParamValue;
import io.modelmerge.engine.recipe.RecipeException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;

/**
 * Reads a method's declared parameters out of a recipe: names the method does not declare are ignored and listed,
 * as mergekit ignores them (or, strict, refused), and each
 * value is taken from the most specific level that gives one (a model's own, its slice's, the recipe's), at a
 * tensor and its layer position, else the declared default, then typed against the declaration.
 */
final class ParameterResolver {
    private final RecipeMethod method;
    private final Map<String, ParamValue> recipeParameters;
    private final boolean strict;
    private final List<String> ignored = new ArrayList<>();

    ParameterResolver(RecipeMethod method, Map<String, ParamValue> recipeParameters, boolean strict) {
        this.method = method;
        this.recipeParameters = recipeParameters;
        this.strict = strict;
    }

    /**
     * A name in {@code given} that none of {@code known} has: refused when strict, else noted as ignored;
     * {@code where} names the place for the message.
     */
    void checkNames(Map<String, ParamValue> given, List<ParameterDef> known, String where) throws RecipeException {
        TreeSet<String> names = new TreeSet<>();
        known.forEach(d -> names.add(d.name()));
        for (String name : given.keySet()) {
            if (names.contains(name)) {
                continue;
            }
            if (strict) {
                throw new RecipeException("unknown parameter '" + name + "' in " + where + " for merge_method "
                        + method.name() + " (known: " + names + ")");
            }
            ignored.add("parameter '" + name + "' in " + where + " is not one merge_method " + method.name()
                    + " takes (" + names + "); ignored, as mergekit ignores it (strict mode refuses it)");
        }
    }

    /** What {@link #checkNames} ignored, one note each. */
    List<String> ignored() {
        return List.copyOf(ignored);
    }

    /** The values of {@code defs} for {@code tensor} at {@code position}, by name, in declaration order. */
    Map<String, Object> resolve(List<ParameterDef> defs, String tensor, double position, Map<String, ParamValue> own,
                                Map<String, ParamValue> slice) throws RecipeException {
        Map<String, Object> values = new LinkedHashMap<>();
        for (ParameterDef def : defs) {
            Optional<Object> value = Optional.empty();
            for (Map<String, ParamValue> level : List.of(own, slice, recipeParameters)) {
                ParamValue given = level.get(def.name());
                if (given != null) {
                    value = given.at(tensor, position);
                    if (value.isPresent()) {
                        break;
                    }
                }
            }
            Object resolved = value.or(def::defaultValue).orElseThrow(() -> new RecipeException(
                    "merge_method " + method.name() + " needs parameter '" + def.name() + "' (none given for tensor '"
                            + tensor + "')"));
            values.put(def.name(), typed(def, resolved, tensor));
        }
        return values;
    }

    private static Object typed(ParameterDef def, Object value, String tensor) throws RecipeException {
        if (!def.choices().isEmpty()) {
            String text = String.valueOf(value);
            if (!def.choices().contains(text)) {
                throw new RecipeException("parameter '" + def.name() + "' is '" + text + "' for tensor '" + tensor
                        + "'; expected one of " + def.choices());
            }
            return text;
        }
        if (def.type() == Double.class && value instanceof Number n && Double.isFinite(n.doubleValue())) {
            return n.doubleValue();
        }
        if (def.type() == Boolean.class && value instanceof Boolean b) {
            return b;
        }
        if (def.type() == String.class && value instanceof String text) {
            return text;
        }
        throw new RecipeException("parameter '" + def.name() + "' must be " + (def.type() == Boolean.class
                ? "true or false" : "a finite number") + ", got '" + value + "' for tensor '" + tensor + "'");
    }
}
