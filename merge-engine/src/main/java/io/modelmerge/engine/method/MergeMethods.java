package io.modelmerge.engine.method;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** The methods recipes can name, by name: one line each. */
public final class MergeMethods {
    private static final Map<String, RecipeMethod> BY_NAME = new TreeMap<>();

    static {
        for (RecipeMethod method : List.of(new LinearMerge(), new TaskArithmeticMerge(false), new TiesMerge(),
                new DareLinearMerge(), new DareTiesMerge(), new TaskArithmeticMerge(true), new SlerpMerge(),
                new BreadcrumbsMerge(false), new BreadcrumbsMerge(true), new DellaMerge(false), new DellaMerge(true),
                new ModelStockMerge(), new MultiSlerpMerge(), new KarcherMerge(), new NuSlerpMerge(), new SceMerge(),
                new PcbMerge(), new PassthroughMerge(), new FisherMerge(), new NearSwapMerge(), new ExtrapolateMerge(), new RamMerge(false),
                new RamMerge(true), new ArceeFusionMerge(), new RegMeanMerge(),
                AdapterMethod.CAT, AdapterMethod.SVD, AdapterMethod.ROBUST, DeltaMethod.EXTRACT, DeltaMethod.SPARSIFY, DeltaMethod.BITDELTA,
                DeltaMethod.LOWRANK, SearchMethod.GREEDY_SOUP, SearchMethod.EVOLVE)) {
            BY_NAME.put(method.name(), method);
        }
    }

    private MergeMethods() {
    }

    public static RecipeMethod named(String name) throws RecipeException {
        RecipeMethod method = BY_NAME.get(name);
        if (method == null) {
            throw new RecipeException("unknown merge_method '" + name + "' (known: " + String.join(", ", names()) + ")");
        }
        return method;
    }

    /** The input parameters the method called {@code name} declares; none for an unknown method. */
    public static List<String> inputParameters(String name) {
        RecipeMethod method = BY_NAME.get(name);
        return method == null ? List.of() : method.inputParameters();
    }

    /** Every method name a recipe can use. */
    public static List<String> names() {
        return List.copyOf(BY_NAME.keySet());
    }

    /** Every method, by name. */
    public static List<RecipeMethod> all() {
        return List.copyOf(BY_NAME.values());
    }
}
