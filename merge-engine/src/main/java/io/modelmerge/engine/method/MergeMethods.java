package io.modelmerge.engine.method;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** The methods recipes can name, by name. */
public final class MergeMethods {
    private static final Map<String, MergeMethod> BY_NAME = new TreeMap<>();

    static {
        for (MergeMethod method : List.of(new LinearMerge(), new TaskArithmeticMerge(), new TiesMerge(),
                new DareLinearMerge(), new DareTiesMerge(), new MagnitudePruneMerge(), new SlerpMerge(),
                new BreadcrumbsMerge(false), new BreadcrumbsMerge(true), new DellaMerge(false), new DellaMerge(true),
                new ModelStockMerge(), new MultiSlerpMerge(), new KarcherMerge(), new NuSlerpMerge(), new SceMerge(),
                new PcbMerge(), new PassthroughMerge(), new FisherMerge())) {
            BY_NAME.put(method.name(), method);
        }
    }

    private MergeMethods() {
    }

    public static MergeMethod named(String name) throws RecipeException {
        MergeMethod method = BY_NAME.get(name);
        if (method == null) {
            throw new RecipeException("unknown merge_method '" + name + "' (known: " + String.join(", ", BY_NAME.keySet()) + ")");
        }
        return method;
    }

    public static List<String> names() {
        return List.copyOf(BY_NAME.keySet());
    }
}
