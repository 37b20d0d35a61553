package io.modelmerge.engine.method;

import java.util.List;
import java.util.Optional;

/**
 * A merge that chooses itself by scoring candidates with an evaluator: {@code greedy_soup} (the models are the
 * ingredients) and {@code evolve} (CMA-ES over the parameters of a recipe for {@code method}: a per-model or
 * global parameter given as {@code [min, max]} is searched between those bounds, any other value stays fixed). As
 * recipes they take the merge service's queue, leases, idempotency, pinning and registration; they run where an
 * evaluator is known (the merge service's registered evaluators), not in a plain {@code mergectl merge}.
 */
public record SearchMethod(String name, Kind kind, List<ParameterDef> globalParameters) implements RecipeMethod {

    /** The search. */
    public enum Kind { GREEDY_SOUP, EVOLVE }

    /** The registered evaluator that scores candidates, as {@code name@version}. */
    public static final ParameterDef EVALUATOR = ParameterDef.text("evaluator");
    /** Seconds each evaluation may take before its candidate is failed. */
    public static final ParameterDef TIMEOUT = ParameterDef.number("evaluation_timeout", 600)
            .within(new ParameterDef.Range(0, false, 86_400, true));
    /** The method whose recipe {@code evolve} searches. */
    public static final ParameterDef METHOD = ParameterDef.text("method", "task_arithmetic");
    /** The most candidates {@code evolve} merges and scores. */
    public static final ParameterDef BUDGET = ParameterDef.number("budget", 40)
            .within(new ParameterDef.Range(2, true, 10_000, true));
    /** Candidates of one generation merged and scored at once. */
    public static final ParameterDef PARALLEL = ParameterDef.number("parallel", 1)
            .within(new ParameterDef.Range(1, true, 64, true));
    /**
     * Values searched per parameter across the layers: 1, one value for the whole model; n, a gradient of n
     * points (mergekit's layer interpolation), like mergekit-evolve's layer groups.
     */
    public static final ParameterDef LAYER_GROUPS = ParameterDef.number("layer_groups", 1)
            .within(new ParameterDef.Range(1, true, 64, true));

    public static final SearchMethod GREEDY_SOUP = new SearchMethod("greedy_soup", Kind.GREEDY_SOUP,
            List.of(EVALUATOR, TIMEOUT));
    public static final SearchMethod EVOLVE = new SearchMethod("evolve", Kind.EVOLVE,
            List.of(EVALUATOR, TIMEOUT, METHOD, BUDGET, PARALLEL, LAYER_GROUPS));

    public SearchMethod {
        globalParameters = List.copyOf(globalParameters);
    }

    @Override
    public boolean requiresBase() {
        return false;
    }

    @Override
    public int minModels() {
        return 1;
    }

    /** The searched recipe's own parameters, per model: any (its method declares them). */
    @Override
    public List<ParameterDef> modelParameters() {
        return List.of();
    }

    @Override
    public Optional<String> needsMoreThanCheckpoints() {
        return Optional.of("it scores candidates with an evaluator");
    }
}
