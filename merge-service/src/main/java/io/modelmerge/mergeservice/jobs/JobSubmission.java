package io.modelmerge.mergeservice.jobs;

import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.method.MergeMethods;
import io.modelmerge.engine.method.SearchMethod;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.engine.search.SearchRecipes;
import io.modelmerge.mergeservice.MergeServiceConfig;
import io.modelmerge.mergeservice.evaluation.Evaluators;
import io.modelmerge.registry.client.AliasName;
import io.modelmerge.registry.client.Identity;
import io.modelmerge.registry.client.InvalidNameException;
import io.modelmerge.registry.client.ModelName;
import io.modelmerge.registry.client.RegistryClient;
import io.modelmerge.registry.client.Scope;
import io.modelmerge.registry.client.VersionRef;
import io.modelmerge.service.db.Database;
import io.modelmerge.service.limits.LimitException;
import io.modelmerge.service.limits.Limits;
import io.modelmerge.storage.blob.ChecksumMismatchException;
import io.modelmerge.storage.blob.OutsideRootsException;
import io.modelmerge.storage.blob.StorageResolver;
import io.modelmerge.storage.blob.UnsupportedLocationException;
import io.modelmerge.storage.checkpoint.InvalidCheckpointException;
import io.modelmerge.storage.safetensors.SafetensorsFormatException;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Accepts a job: checks the request against the {@link Limits}, parses the recipe, pins every registry ref to
 * the exact version it resolves to now, runs the engine's checks on the inputs' headers (local inputs only under
 * the service's roots), and only then queues it. A refused job leaves nothing behind.
 */
@ApplicationScoped
public class JobSubmission {

    private final Database db;
    private final RegistryClient registry;
    private final MergeServiceConfig config;
    private final StorageResolver storage;
    private final Evaluators evaluators;

    public JobSubmission(Database db, RegistryClient registry, MergeServiceConfig config, StorageResolver storage,
                         Evaluators evaluators) {
        this.db = db;
        this.registry = registry;
        this.config = config;
        this.storage = storage;
        this.evaluators = evaluators;
    }

    /**
     * Queues {@code request} for {@code submitter}, who must hold submit and write on the output model (and may
     * move its alias, if one is asked for) and read on every input: refused with PERMISSION_DENIED naming the first
     * it may not, before any input is resolved.
     */
    public MergeJob submit(JobRequest request, Identity submitter) {
        try {
            checkLimits(request);
        } catch (LimitException e) {
            throw invalid(e.getMessage());
        }
        try {
            ModelName.parse(request.outputModel());
        } catch (InvalidNameException e) {
            throw invalid("output.model: " + e.getMessage());
        }
        if (!request.outputAlias().isEmpty()) {
            try {
                AliasName.check(request.outputAlias());
            } catch (InvalidNameException e) {
                throw invalid("output.alias: " + e.getMessage());
            }
        }
        checkOutput(request, submitter);
        String digest = request.digest();
        if (!request.idempotencyKey().isEmpty()) {
            Optional<MergeJob> existing = db.read(c -> JobTable.findByKey(c, request.idempotencyKey()));
            if (existing.isPresent()) {
                return sameRequest(existing.get(), request.idempotencyKey(), digest);
            }
        }
        Recipe recipe;
        boolean search;
        try {
            recipe = JobRecipes.parse(request.recipe());
            search = MergeMethods.named(recipe.mergeMethod()) instanceof SearchMethod;
            if (!request.outDtype().isEmpty()) {
                RecipeParser.dtype(request.outDtype());
            }
        } catch (RecipeException e) {
            throw invalid("recipe_yaml: " + e.getMessage());
        }
        if (recipe.modelRefs().size() > Limits.RECIPE_INPUTS) {
            throw invalid("recipe_yaml: names " + recipe.modelRefs().size() + " inputs, over the limit of "
                    + Limits.RECIPE_INPUTS);
        }
        checkInputs(recipe, submitter);
        if (search) {
            checkSearch(recipe, request, submitter);
        }
        Map<String, Pin> pinned = pin(recipe);
        JobRequest complete = new JobRequest(request.recipe(), request.outputModel(), request.outputAlias(),
                request.outputTags(), request.outputDescription(), request.seed(),
                request.memoryBytes() == 0 ? config.defaultMemoryBytes() : request.memoryBytes(),
                request.shardSizeBytes() == 0 ? MergeOptions.DEFAULT_SHARD_SIZE : request.shardSizeBytes(),
                request.outDtype(), request.priority(), request.strict(), request.idempotencyKey(), pinned);
        try {
            MergeOptions options = JobRecipes.options(config, complete, storage);
            if (search) {
                SearchRecipes.validate(recipe, JobRecipes.locations(recipe, pinned), new MergeExecutor(
                        SearchRecipes.candidateOptions(recipe, options), p -> { }, new AtomicBoolean()));
            } else {
                new MergeExecutor(options, p -> { }, new AtomicBoolean())
                        .validate(JobRecipes.located(recipe, pinned, complete.outDtype()));
            }
        } catch (RecipeException e) {
            throw new JobException(JobException.Kind.FAILED_PRECONDITION, e.getMessage());
        } catch (IOException e) {
            throw inputFailure(e);
        }
        MergeJob.Submitter by = new MergeJob.Submitter(submitter.name(), submitter.tokenId());
        MergeJob queued = db.transaction(c -> JobTable.insert(c, UUID.randomUUID(), complete, digest,
                config.maxAttempts(), by));
        return complete.idempotencyKey().isEmpty() ? queued : sameRequest(queued, complete.idempotencyKey(), digest);
    }

    /**
     * A search names an evaluator registered here that the submitter may read; it writes what its candidates'
     * inputs hold, so it takes no out_dtype.
     */
    private void checkSearch(Recipe recipe, JobRequest request, Identity submitter) {
        if (!request.outDtype().isEmpty()) {
            throw invalid("options.out_dtype: a search (" + recipe.mergeMethod() + ") writes its candidates' dtype;"
                    + " leave it empty");
        }
        try {
            evaluators.require(SearchRecipes.evaluator(recipe), submitter);
        } catch (RecipeException e) {
            throw invalid("recipe_yaml: " + e.getMessage());
        }
    }

    /** Submit and write on the output model, and promote of its alias where one is asked for. */
    private static void checkOutput(JobRequest request, Identity submitter) {
        String output = request.outputModel();
        if (!submitter.may(Scope.SUBMIT, output)) {
            throw JobException.denied(submitter, "submit jobs for the output model " + output);
        }
        if (!submitter.may(Scope.WRITE, output)) {
            throw JobException.denied(submitter, "write the output model " + output);
        }
        if (!request.outputAlias().isEmpty() && !submitter.mayMoveAlias(output, request.outputAlias())) {
            throw JobException.denied(submitter, "move alias '" + request.outputAlias() + "' of the output model " + output);
        }
    }

    /**
     * Read on every input's model; an input given as a storage location (s3://, file://) is outside the registry's
     * namespaces, so it takes read on all of them ('*').
     */
    private static void checkInputs(Recipe recipe, Identity submitter) {
        for (String model : recipe.modelRefs()) {
            for (String part : JobRecipes.parts(model)) {
                if (JobRecipes.isRegistryRef(part)) {
                    String name = VersionRef.parse(part).model().toString();
                    if (!submitter.may(Scope.READ, name)) {
                        throw JobException.denied(submitter, "read the input '" + part + "'");
                    }
                } else if (!submitter.readsEverything()) {
                    throw JobException.denied(submitter, "read the input '" + part + "': a storage location, which takes read on"
                            + " every namespace ('*')");
                }
            }
        }
    }

    /** Every limit a request must meet before anything else is looked at. */
    private void checkLimits(JobRequest request) {
        Limits.recipe("recipe_yaml", request.recipe());
        Limits.text("output.model", request.outputModel());
        Limits.text("output.alias", request.outputAlias());
        Limits.description("output.description", request.outputDescription());
        Limits.tags("output.tags", request.outputTags());
        Limits.text("options.out_dtype", request.outDtype());
        if (!request.idempotencyKey().isEmpty()) {
            Limits.idempotencyKey("idempotency_key", request.idempotencyKey());
        }
        long memory = request.memoryBytes();
        long max = config.allowedMaxMemoryBytes();
        if (memory != 0 && (memory < Limits.MIN_MEMORY_BYTES || memory > max)) {
            throw new LimitException("options.memory_bytes", memory + " is outside " + Limits.MIN_MEMORY_BYTES + " to "
                    + max + " (0 for the service default, " + config.defaultMemoryBytes() + ")");
        }
        long shard = request.shardSizeBytes();
        if (shard != 0 && shard < Limits.MIN_SHARD_BYTES) {
            throw new LimitException("options.shard_size_bytes", shard + " is under the minimum of "
                    + Limits.MIN_SHARD_BYTES + " (0 for the default, " + MergeOptions.DEFAULT_SHARD_SIZE + ")");
        }
    }

    /** The job queued under {@code key}, if it was queued for this same request; otherwise ALREADY_EXISTS. */
    private static MergeJob sameRequest(MergeJob existing, String key, String digest) {
        if (!existing.requestDigest().equals(digest)) {
            throw new JobException(JobException.Kind.ALREADY_EXISTS, "idempotency_key '" + key + "' was used for job "
                    + existing.id() + " with a different request; use a new key for a new request");
        }
        return existing;
    }

    /** Why the inputs could not be opened, as the status it deserves. */
    private static JobException inputFailure(IOException e) {
        if (e instanceof OutsideRootsException || e instanceof UnsupportedLocationException) {
            return invalid("recipe_yaml: " + e.getMessage());
        }
        if (e instanceof InvalidCheckpointException || e instanceof SafetensorsFormatException
                || e instanceof ChecksumMismatchException || e instanceof FileNotFoundException
                || e instanceof NoSuchFileException) {
            return new JobException(JobException.Kind.FAILED_PRECONDITION, e.getMessage());
        }
        return new JobException(JobException.Kind.UNAVAILABLE, "the inputs' storage could not be read: " + e.getMessage());
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
                            : e.status() >= 500 ? JobException.Kind.UNAVAILABLE : JobException.Kind.INVALID_ARGUMENT,
                            "model '" + part + "': " + e.getMessage());
                } catch (IOException e) {
                    throw new JobException(JobException.Kind.UNAVAILABLE,
                            "model '" + part + "': the registry could not be reached (" + e.getMessage() + ")");
                }
            }
        }
        return pinned;
    }

    private static JobException invalid(String message) {
        return new JobException(JobException.Kind.INVALID_ARGUMENT, message);
    }
}
