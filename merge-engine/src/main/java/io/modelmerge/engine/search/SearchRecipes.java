package io.modelmerge.engine.search;

import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.method.MergeMethods;
import io.modelmerge.engine.method.ParameterDef;
import io.modelmerge.engine.method.SearchMethod;
import io.modelmerge.engine.recipe.ParamValue;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * A {@link SearchMethod}'s recipe as a search: which evaluator scores it, the recipes it checks before it runs,
 * and the run itself.
 *
 * <pre>
 * merge_method: greedy_soup          # the models are the ingredients
 * parameters: {evaluator: digits@1}
 * models: [{model: ns/a@1}, {model: ns/b@1}, {model: ns/c@1}]
 *
 * merge_method: evolve               # CMA-ES over a ties recipe's weights and densities
 * base_model: ns/base@1
 * parameters: {evaluator: digits@1, method: ties, budget: 24, normalize: false}
 * models:
 *   - model: ns/a@1
 *     parameters: {weight: [0, 1], density: [0.2, 1]}   # [min, max]: searched; a number: fixed
 * </pre>
 */
public final class SearchRecipes {
    private static final Set<String> OWN = Set.of(SearchMethod.EVALUATOR.name(), SearchMethod.TIMEOUT.name(),
            SearchMethod.METHOD.name(), SearchMethod.BUDGET.name(), SearchMethod.PARALLEL.name(),
            SearchMethod.LAYER_GROUPS.name());

    private static final long MINIMUM_MEMORY = 16L << 20;

    private SearchRecipes() {
    }

    /**
     * What a search ended with: its score, the evaluations it sent, the models (as the recipe names them) its merge
     * is made of, and its report as written beside the output.
     */
    public record Outcome(double score, int evaluations, String evaluator, List<String> chosen, String reportFile,
                          byte[] report) {
        public Outcome {
            chosen = List.copyOf(chosen);
        }
    }

    /** The evaluator a search recipe names ({@code name@version}), required. */
    public static String evaluator(Recipe recipe) throws RecipeException {
        String name = text(recipe, SearchMethod.EVALUATOR);
        if (name.isEmpty()) {
            throw new RecipeException(recipe.mergeMethod() + " needs parameters.evaluator: the registered evaluator"
                    + " (name@version) that scores its candidates");
        }
        return name;
    }

    /**
     * The options each candidate's merge runs with: the search's memory budget shared by the candidates merged at
     * once ({@code parallel}), so a search holds no more than one merge would.
     */
    public static MergeOptions candidateOptions(Recipe recipe, MergeOptions search) throws RecipeException {
        int parallel = method(recipe).kind() == SearchMethod.Kind.EVOLVE
                ? (int) number(recipe, SearchMethod.PARALLEL) : 1;
        return search.withMemory(Math.max(MINIMUM_MEMORY, search.memoryBytes() / parallel));
    }

    /**
     * Every check before a search runs: its own parameters, then the engine's checks of the recipes it merges
     * (greedy soup: the uniform average of every ingredient; evolve: the middle of the searched bounds).
     */
    public static void validate(Recipe recipe, Map<String, String> locations, MergeExecutor executor)
            throws IOException, RecipeException {
        SearchMethod method = method(recipe);
        evaluator(recipe);
        timeout(recipe);
        String checked = switch (method.kind()) {
            case GREEDY_SOUP -> GreedySoup.uniformAverage(ingredients(recipe));
            case EVOLVE -> {
                RecipeSearch.Space space = space(recipe);
                number(recipe, SearchMethod.BUDGET);
                number(recipe, SearchMethod.PARALLEL);
                yield space.recipe(space.middle());
            }
        };
        executor.validate(RecipeParser.parse(checked).withLocations(locations));
    }

    /**
     * Runs the search of {@code recipe} (its models as written, their files at {@code locations}) into {@code out},
     * each candidate scored by {@code evaluator} within the recipe's evaluation timeout.
     */
    public static Outcome run(Recipe recipe, Map<String, String> locations, MergeExecutor executor,
                              Evaluator evaluator, ScoreCache cache, Clock clock, long seed,
                              Consumer<SearchProgress> progress, Path out) throws IOException, RecipeException {
        SearchMethod method = method(recipe);
        Duration timeout = timeout(recipe);
        return switch (method.kind()) {
            case GREEDY_SOUP -> {
                GreedySoup.Result result = new GreedySoup(executor, evaluator, cache, timeout, clock, progress)
                        .run(ingredients(recipe), locations, out);
                yield new Outcome(result.score(), result.evaluations(), result.evaluator(), result.soup(),
                        GreedySoup.REPORT, result.toJson());
            }
            case EVOLVE -> {
                RecipeSearch.Result result = new RecipeSearch(executor, evaluator, cache, timeout, clock, progress)
                        .run(space(recipe), locations, (int) number(recipe, SearchMethod.BUDGET), seed,
                                (int) number(recipe, SearchMethod.PARALLEL), out);
                yield new Outcome(result.score(), result.evaluations(), result.evaluator(), recipe.modelRefs(),
                        RecipeSearch.REPORT, result.toJson());
            }
        };
    }

    private static SearchMethod method(Recipe recipe) throws RecipeException {
        if (MergeMethods.named(recipe.mergeMethod()) instanceof SearchMethod search) {
            if (!recipe.slices().isEmpty()) {
                throw new RecipeException(search.name() + " takes models, not slices");
            }
            return search;
        }
        throw new RecipeException(recipe.mergeMethod() + " is not a search (greedy_soup, evolve)");
    }

    /** A greedy soup's ingredients: its models, without base or per-model parameters (the soup is uniform). */
    private static List<String> ingredients(Recipe recipe) throws RecipeException {
        if (recipe.baseModel().isPresent()) {
            throw new RecipeException("greedy_soup averages its models uniformly; it takes no base_model");
        }
        for (int i = 0; i < recipe.models().size(); i++) {
            if (!recipe.models().get(i).parameters().isEmpty()) {
                throw new RecipeException("models[" + i + "].parameters: greedy_soup averages its ingredients"
                        + " uniformly and takes none");
            }
        }
        return recipe.models().stream().map(Recipe.ModelSpec::model).toList();
    }

    /**
     * An evolve recipe's search space: {@code method}'s recipe over the same base and models, each parameter given
     * as {@code [min, max]} searched (once per layer group), every other value fixed.
     */
    static RecipeSearch.Space space(Recipe recipe) throws RecipeException {
        int groups = (int) number(recipe, SearchMethod.LAYER_GROUPS);
        String method = text(recipe, SearchMethod.METHOD);
        if (MergeMethods.named(method) instanceof SearchMethod) {
            throw new RecipeException("evolve: parameters.method '" + method + "' is a search itself");
        }
        List<RecipeSearch.Dimension> dimensions = new ArrayList<>();
        Map<String, String> fixed = new LinkedHashMap<>();
        for (Map.Entry<String, ParamValue> p : new TreeMap<>(recipe.parameters()).entrySet()) {
            if (!OWN.contains(p.getKey())) {
                place(p.getKey(), p.getValue(), -1, groups, "parameters." + p.getKey(), fixed, dimensions);
            }
        }
        List<Map<String, String>> modelFixed = new ArrayList<>();
        for (int m = 0; m < recipe.models().size(); m++) {
            Map<String, String> own = new LinkedHashMap<>();
            for (Map.Entry<String, ParamValue> p : new TreeMap<>(recipe.models().get(m).parameters()).entrySet()) {
                place(p.getKey(), p.getValue(), m, groups, "models[" + m + "].parameters." + p.getKey(), own,
                        dimensions);
            }
            modelFixed.add(own);
        }
        if (dimensions.isEmpty()) {
            throw new RecipeException("evolve: nothing to search; give a parameter as [min, max] bounds, such as"
                    + " models[0].parameters.weight: [0, 1]");
        }
        return new RecipeSearch.Space(method, recipe.baseModel(),
                recipe.models().stream().map(Recipe.ModelSpec::model).toList(), fixed, modelFixed, dimensions);
    }

    /** A parameter as searched bounds (a list of two numbers) or a fixed scalar. */
    private static void place(String name, ParamValue value, int model, int groups, String where,
                              Map<String, String> fixed, List<RecipeSearch.Dimension> dimensions)
            throws RecipeException {
        switch (value) {
            case ParamValue.Gradient(List<Double> bounds) when bounds.size() == 2 -> {
                if (!(bounds.get(0) < bounds.get(1))) {
                    throw new RecipeException("evolve: " + where + ": bounds " + bounds + " are empty (min < max)");
                }
                for (int g = 0; g < groups; g++) {
                    dimensions.add(new RecipeSearch.Dimension(name, model, g, bounds.get(0), bounds.get(1)));
                }
            }
            case ParamValue.Scalar(Double number) -> fixed.put(name, StagedCandidates.number(number));
            case ParamValue.Scalar(Boolean flag) -> fixed.put(name, flag.toString());
            case ParamValue.Scalar(Object other) -> fixed.put(name, StagedCandidates.quoted(other.toString()));
            default -> throw new RecipeException("evolve: " + where + ": give [min, max] bounds to search it or one"
                    + " value to fix it (gradients and filtered lists are not searched)");
        }
    }

    private static Duration timeout(Recipe recipe) throws RecipeException {
        return Duration.ofMillis(Math.round(number(recipe, SearchMethod.TIMEOUT) * 1000));
    }

    private static String text(Recipe recipe, ParameterDef def) throws RecipeException {
        ParamValue value = recipe.parameters().get(def.name());
        if (value == null) {
            return (String) def.defaultValue().orElseThrow();
        }
        if (value instanceof ParamValue.Scalar(String s)) {
            return s;
        }
        throw new RecipeException(recipe.mergeMethod() + ": parameters." + def.name() + " must be a name, got "
                + value);
    }

    private static double number(Recipe recipe, ParameterDef def) throws RecipeException {
        ParamValue value = recipe.parameters().get(def.name());
        double x;
        if (value == null) {
            x = (Double) def.defaultValue().orElseThrow();
        } else if (value instanceof ParamValue.Scalar(Double d)) {
            x = d;
        } else {
            throw new RecipeException(recipe.mergeMethod() + ": parameters." + def.name() + " must be a number, got "
                    + value);
        }
        Optional<ParameterDef.Range> range = def.range();
        if (range.isPresent() && !range.get().contains(x)) {
            throw new RecipeException(recipe.mergeMethod() + ": parameters." + def.name() + " = "
                    + StagedCandidates.number(x) + " is outside " + range.get());
        }
        if (def != SearchMethod.TIMEOUT && x != Math.rint(x)) {
            throw new RecipeException(recipe.mergeMethod() + ": parameters." + def.name() + " must be a whole number,"
                    + " got " + StagedCandidates.number(x));
        }
        return x;
    }
}
