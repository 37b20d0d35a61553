package io.modelmerge.mergeservice.jobs;

import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.mergeservice.MergeServiceConfig;
import io.modelmerge.registry.client.VersionRef;
import io.modelmerge.storage.blob.StorageResolver;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Between a job and the engine: which model strings of a recipe are registry refs, the recipe with its refs
 * replaced by the storage URIs they were pinned to, and the engine options of a job.
 */
public final class JobRecipes {
    private JobRecipes() {
    }

    /** Whether {@code part} (one side of {@code base+adapter}) is a registry ref rather than a URI or path. */
    public static boolean isRegistryRef(String part) {
        return VersionRef.isRefShaped(part);
    }

    /** The parts of a recipe's model string: {@code base+adapter} has two. */
    public static List<String> parts(String model) {
        return List.of(model.split("\\+", -1));
    }

    public static Recipe parse(String yaml) throws RecipeException {
        return RecipeParser.parse(yaml);
    }

    /** The job's recipe, ready for the engine: refs replaced by their pinned storage, out_dtype applied. */
    public static Recipe located(MergeJob job) throws RecipeException {
        return located(parse(job.request().recipe()), job.request().pinned(), job.request().outDtype());
    }

    public static Recipe located(Recipe recipe, Map<String, Pin> pinned, String outDtype) {
        Recipe located = recipe.withLocations(locations(recipe, pinned));
        if (outDtype.isEmpty()) {
            return located;
        }
        return located.withOutDtype(outDtype);
    }

    /** Where each model string of {@code recipe} is read from: its registry refs replaced by their pinned storage. */
    public static Map<String, String> locations(Recipe recipe, Map<String, Pin> pinned) {
        Map<String, String> locations = new LinkedHashMap<>();
        for (String model : recipe.modelRefs()) {
            locations.put(model, String.join("+", parts(model).stream()
                    .map(p -> pinned.containsKey(p) ? pinned.get(p).storageUri() : p).toList()));
        }
        return locations;
    }

    /**
     * What a listing shows of a recipe: its method and its inputs, at most 512 characters (GetJob has it whole).
     */
    public static String summary(String yaml) {
        String summary;
        try {
            Recipe recipe = parse(yaml);
            summary = recipe.mergeMethod() + " of " + String.join(", ", recipe.modelRefs());
        } catch (RecipeException e) {
            summary = "(unreadable recipe)";
        }
        return summary.length() <= 512 ? summary : summary.substring(0, 509) + "...";
    }

    /** The engine's options for a job. */
    public static MergeOptions options(MergeServiceConfig config, JobRequest request, StorageResolver storage) {
        MergeOptions options = MergeOptions.defaults()
                .withMemory(request.memoryBytes())
                .withSeed(request.seed())
                .withOutShardSize(request.shardSizeBytes())
                .withCache(config.dataDir().resolve("cache"), config.cacheBytes())
                .withStorage(storage)
                .withMaxBytesPerSecond(config.maxBytesPerSecond())
                .withStrict(request.strict());
        return config.threads().map(options::withThreads).orElse(options);
    }
}
