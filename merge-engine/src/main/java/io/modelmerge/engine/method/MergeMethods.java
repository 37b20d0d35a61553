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

    /**
     * Methods that combine PEFT LoRA adapters into one adapter ({@code cat}, {@code svd}): whole modules rather
     * than tensors element by element, so the executor runs them apart from the methods above.
     */
    public static final java.util.Set<String> ADAPTER_MERGES = java.util.Set.of("cat", "svd");

    private MergeMethods() {
    }

    public static MergeMethod named(String name) throws RecipeException {
        MergeMethod method = BY_NAME.get(name);
        if (method == null) {
            throw new RecipeException("unknown merge_method '" + name + "' (known: " + String.join(", ", names()) + ")");
        }
        return method;
    }

    /** Every method name a recipe can use, the adapter merges included. */
    public static List<String> names() {
        java.util.TreeSet<String> all = new java.util.TreeSet<>(BY_NAME.keySet());
        all.addAll(ADAPTER_MERGES);
        return List.copyOf(all);
    }
}
