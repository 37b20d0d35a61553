package io.modelmerge.mergeservice.jobs;

import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.method.MergeMethods;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.mergeservice.MergeServiceConfig;
import io.modelmerge.mergeservice.registry.RegistryClient;
import io.modelmerge.service.db.Database;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;

/**
 * Accepts a job: parses the recipe, pins every registry ref to the exact version it resolves to now, runs the
 * engine's checks on the inputs' headers, and only then queues it. A refused job leaves nothing behind.
 */
@ApplicationScoped
public class JobSubmission {
    private static final Pattern MODEL = Pattern.compile("[a-z0-9][a-z0-9._-]{0,95}/[a-z0-9][a-z0-9._-]{0,95}");
    private static final Pattern ALIAS = Pattern.compile("[a-z][a-z0-9._-]{0,63}");

    private final Database db;
    private final RegistryClient registry;
    private final MergeServiceConfig config;

    public JobSubmission(Database db, RegistryClient registry, MergeServiceConfig config) {
        this.db = db;
        this.registry = registry;
        this.config = config;
    }

    public MergeJob submit(JobRequest request) {
        if (!request.idempotencyKey().isEmpty()) {
            var existing = db.read(c -> JobTable.findByKey(c, request.idempotencyKey()));
            if (existing.isPresent()) {
                return existing.get();
            }
        }
        if (!MODEL.matcher(request.outputModel()).matches() || request.outputModel().contains("..")) {
            throw invalid("output.model: '" + request.outputModel() + "' is not namespace/name (a-z 0-9 . _ -)");
        }
        if (!request.outputAlias().isEmpty()
                && (!ALIAS.matcher(request.outputAlias()).matches() || request.outputAlias().equals("latest"))) {
            throw invalid("output.alias: '" + request.outputAlias() + "' must be a-z 0-9 . _ - starting with a letter,"
                    + " and not 'latest'");
        }
        if (request.memoryBytes() < 0 || request.shardSizeBytes() < 0) {
            throw invalid("options: memory_bytes and shard_size_bytes must not be negative");
        }
        Recipe recipe;
        try {
            recipe = JobRecipes.parse(request.recipe());
            MergeMethods.named(recipe.mergeMethod());
        } catch (RecipeException e) {
            throw invalid("recipe_yaml: " + e.getMessage());
        }
        Map<String, Pin> pinned = pin(recipe);
        JobRequest complete = new JobRequest(request.recipe(), request.outputModel(), request.outputAlias(),
                request.outputTags(), request.outputDescription(), request.seed(),
                request.memoryBytes() == 0 ? config.defaultMemoryBytes() : request.memoryBytes(),
                request.shardSizeBytes() == 0 ? MergeOptions.DEFAULT_SHARD_SIZE : request.shardSizeBytes(),
                request.outDtype(), request.priority(), request.idempotencyKey(), pinned);
        try {
            new MergeExecutor(JobRecipes.options(config, complete), p -> { }, new AtomicBoolean())
                    .validate(JobRecipes.located(recipe, pinned, complete.outDtype()));
        } catch (RecipeException | IOException e) {
            throw new JobException(JobException.Kind.FAILED_PRECONDITION, e.getMessage());
        }
        return db.transaction(c -> JobTable.insert(c, UUID.randomUUID(), complete, config.maxAttempts()));
    }

    /** Each registry ref of the recipe, resolved now to a version and its storage. */
    private Map<String, Pin> pin(Recipe recipe) {
        Map<String, Pin> pinned = new LinkedHashMap<>();
        for (String model : recipe.modelRefs()) {
            for (String part : JobRecipes.parts(model)) {
                if (!JobRecipes.isRegistryRef(part) || pinned.containsKey(part)) {
                    continue;
                }
                try {
                    RegistryClient.Resolved resolved = registry.resolve(part);
                    pinned.put(part, new Pin(resolved.ref(), resolved.storageUri()));
                } catch (RegistryClient.RegistryError e) {
                    throw new JobException(e.status() == 404 ? JobException.Kind.NOT_FOUND
                            : JobException.Kind.INVALID_ARGUMENT, "model '" + part + "': " + e.getMessage());
                } catch (IOException e) {
                    throw new JobException(JobException.Kind.FAILED_PRECONDITION,
                            "model '" + part + "': the registry could not be reached: " + e.getMessage());
                }
            }
        }
        return pinned;
    }

    private static JobException invalid(String message) {
        return new JobException(JobException.Kind.INVALID_ARGUMENT, message);
    }
}
