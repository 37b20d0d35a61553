package io.modelmerge.mergeservice.jobs;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.exec.MergeResult;
import io.modelmerge.engine.exec.SplitPlan;
import io.modelmerge.engine.method.DeltaMethod;
import io.modelmerge.engine.method.MergeMethods;
import io.modelmerge.engine.method.SearchMethod;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.search.SearchRecipes;
import io.modelmerge.mergeservice.MergeServiceConfig;
import io.modelmerge.registry.client.RegistryClient;
import io.modelmerge.service.db.Database;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.LocalBlobStore;
import io.modelmerge.storage.blob.StorageResolver;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.jboss.logging.Logger;

/**
 * Runs one claimed job to its end: merges into a local work directory while renewing the lease (and noticing a
 * cancel), uploads the files under {@code <output root>/<ns>/<name>/<job id>/}, checks them there, registers
 * the version with its pinned parents (the model created with it) and moves the alias. The calls that end a job
 * are tried again with backoff; an attempt that still fails on something passing puts the job back in the queue
 * for a later attempt. Until the registry has the version nothing is visible, and on every other way out the
 * work directory and the uploads are deleted.
 */
@ApplicationScoped
public class MergeRun {
    private static final Logger LOG = Logger.getLogger(MergeRun.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Database db;
    private final RegistryClient registry;
    private final MergeServiceConfig config;
    private final JobOutputs outputs;
    private final StorageResolver storage;
    private final Uploads uploads;
    private final ShardRun shards;
    private final SearchRun searches;
    private final ScheduledExecutorService renewals = Executors.newScheduledThreadPool(1,
            Thread.ofPlatform().daemon().name("lease-renewal").factory());
    /** The stop flag of every run in progress, so a stopping replica halts them at once. */
    private final Map<UUID, AtomicBoolean> running = new ConcurrentHashMap<>();

    public MergeRun(Database db, RegistryClient registry, MergeServiceConfig config, JobOutputs outputs,
                    StorageResolver storage, Uploads uploads, ShardRun shards, SearchRun searches) {
        this.db = db;
        this.registry = registry;
        this.config = config;
        this.outputs = outputs;
        this.storage = storage;
        this.uploads = uploads;
        this.shards = shards;
        this.searches = searches;
    }

    /** How a run ended for the worker that ran it. */
    enum Outcome { FINISHED, LOST_LEASE, RELEASED, RETRY_LATER }

    Outcome run(UUID id, String owner, AtomicBoolean stopping) {
        MergeJob job = db.read(c -> JobTable.find(c, id)).orElseThrow();
        if (job.attempts() > job.maxAttempts()) {
            outputs.deleteWork(id);
            boolean cleaned = deleteUploadsAndTasks(job);
            finish(job, owner, JobStatus.FAILED, "gave up after " + job.maxAttempts() + " attempts: "
                    + (job.error().isEmpty() ? "each ended without finishing (its worker stopped)" : job.error()),
                    "", job.progress(), cleaned);
            return Outcome.FINISHED;
        }
        AtomicBoolean cancelled = new AtomicBoolean(job.cancelRequested() || stopping.get());
        running.put(id, cancelled);
        AtomicBoolean lost = new AtomicBoolean();
        AtomicReference<JobProgress> progress = new AtomicReference<>(JobProgress.NONE);
        ScheduledFuture<?> renewal = renewals.scheduleAtFixedRate(() -> renew(job, owner, progress, cancelled, lost,
                stopping), 0, Math.clamp(config.lease().toMillis() / 3, 100, 1000), TimeUnit.MILLISECONDS);
        Path work = outputs.workDir(id);
        boolean registered = false;
        BlobStore output = null;
        try {
            output = outputs.uploads(job);
            outputs.deleteWork(id);
            if (output instanceof LocalBlobStore local) {
                local.deleteAbandonedWrites(); // an earlier attempt killed while uploading
            }
            long start = System.nanoTime();
            Recipe recipe = JobRecipes.parse(job.request().recipe());
            MergeOptions options = JobRecipes.options(config, job.request(), storage);
            MergeResult result = null;
            Optional<SearchRecipes.Outcome> search = Optional.empty();
            Map<String, String> mergedBy = Map.of();
            if (MergeMethods.named(recipe.mergeMethod()) instanceof SearchMethod) {
                search = Optional.of(searches.run(job, recipe, JobRecipes.locations(recipe, job.request().pinned()),
                        options, cancelled, progress, work));
            } else {
                Recipe located = JobRecipes.located(recipe, job.request().pinned(), job.request().outDtype());
                Optional<SplitPlan> split = split(located, options);
                if (split.isPresent()) {
                    result = runSplit(job, owner, located, split.get(), options, output, cancelled, progress, work);
                    mergedBy = db.read(c -> TaskTable.list(c, id)).stream().collect(java.util.stream.Collectors.toMap(
                            ShardTask::file, ShardTask::mergedBy, (a, b) -> a, java.util.TreeMap::new));
                } else {
                    result = new MergeExecutor(options, p -> progress.set(JobProgress.of(p)), cancelled).run(located,
                            work.resolve("out"));
                }
            }
            List<String> files = uploads.uploadAll(work.resolve("out"), output, cancelled);
            Uploads.stopIfCancelled(cancelled);
            double seconds = (System.nanoTime() - start) / 1e9;
            Map<String, Object> metrics = search.isPresent() ? searchMetrics(search.get(), seconds)
                    : mergeMetrics(result, seconds);
            Map<String, Object> body = versionBody(job, recipe, outputs.target(job), metrics, mergedBy, search);
            RegistryClient.Registered version = uploads.withRetries("registering the version", cancelled, () -> registry.register(
                    job.request().outputModel(), body, job.request().outputDescription()));
            registered = true;
            if (!version.created() && !version.jobId().equals(id.toString())) {
                // The same content was registered before by another job or by hand: that version stands, and
                // this copy goes. (One this job registered in an earlier attempt is the version itself.)
                outputs.deleteUploads(job);
            }
            if (!job.request().outputAlias().isEmpty()) {
                int number = Integer.parseInt(version.ref().substring(version.ref().lastIndexOf('@') + 1));
                uploads.withRetries("moving alias " + job.request().outputAlias(), cancelled, () -> {
                    registry.moveAlias(job.request().outputModel(), job.request().outputAlias(), number);
                    return null;
                });
            }
            LOG.infof("Job %s: %s registered from %d files in %.1f s", id, version.ref(), files.size(), seconds);
            finish(job, owner, JobStatus.SUCCEEDED, "", version.ref(), progress.get(), true);
            return Outcome.FINISHED;
        } catch (Exception e) {
            return ended(job, owner, e, registered, cancelled, lost, stopping, progress.get());
        } finally {
            renewal.cancel(false);
            running.remove(id);
            outputs.deleteWork(id);
            JobOutputs.closeQuietly(output);
        }
    }

    /** The way out of a run that did not succeed, and what it leaves: nothing, but a registered version. */
    private Outcome ended(MergeJob job, String owner, Exception e, boolean registered, AtomicBoolean cancelled,
                          AtomicBoolean lost, AtomicBoolean stopping, JobProgress progress) {
        UUID id = job.id();
        if (lost.get()) {
            LOG.warnf("Job %s: lease lost to another worker; leaving it to that one", id);
            return Outcome.LOST_LEASE;
        }
        if (stopping.get() && !job.cancelRequested() && cancelled.get()) {
            // a split job's merged shards stay for whoever takes the job next; a whole job's partial upload goes
            if (!registered && db.read(c -> TaskTable.list(c, id)).isEmpty()) {
                outputs.deleteUploads(job);
            }
            db.transaction(c -> {
                JobTable.release(c, id, owner);
                return null;
            });
            LOG.infof("Job %s: handed back to the queue (this replica is stopping)", id);
            return Outcome.RELEASED;
        }
        boolean cleaned = registered || deleteUploadsAndTasks(job);
        if (cancelled.get()) {
            finish(job, owner, JobStatus.CANCELLED, "cancelled", "", progress, cleaned);
            return Outcome.FINISHED;
        }
        String message = message(e);
        if (Uploads.passing(e) && job.attempts() < job.maxAttempts()) {
            LOG.warnf("Job %s: attempt %d failed on something passing, retrying in %s: %s", id, job.attempts(),
                    config.retryDelay(), message);
            boolean held = db.transaction(c -> JobTable.retryLater(c, id, owner, message, config.retryDelay()));
            if (!held) {
                LOG.warnf("Job %s: could not queue it again, the lease had moved on", id);
            }
            return Outcome.RETRY_LATER;
        }
        LOG.errorf(e, "Job %s failed", id);
        finish(job, owner, JobStatus.FAILED, message, "", progress, cleaned);
        return Outcome.FINISHED;
    }

    /**
     * The split of a merge over the replicas, where the output has several shards and this replica splits jobs;
     * a recipe that is not a merge of full checkpoints (an adapter merge, a delta edit) runs whole.
     */
    private Optional<SplitPlan> split(Recipe located, MergeOptions options) throws IOException {
        if (!config.splitJobs()) {
            return Optional.empty();
        }
        try {
            SplitPlan plan = new MergeExecutor(options, p -> { }, new AtomicBoolean()).planSplit(located);
            return plan.shards().size() > 1 ? Optional.of(plan) : Optional.empty();
        } catch (RecipeException e) {
            // not a merge of full checkpoints (planSplit refuses those), or a refusal the whole run reports
            return Optional.empty();
        }
    }

    /**
     * Coordinates a split job: the model-wide statistic once (stored with the job, so a later attempt reuses it),
     * a task per shard for any replica to claim (this worker takes them too), and, when every shard is merged and
     * its upload checked, the rest of the output into {@code work/out}.
     */
    private MergeResult runSplit(MergeJob job, String owner, Recipe located, SplitPlan plan, MergeOptions options,
                                 BlobStore output, AtomicBoolean cancelled, AtomicReference<JobProgress> progress,
                                 Path work) throws IOException, RecipeException {
        UUID id = job.id();
        if (plan.modelWide() && db.read(c -> JobTable.statistics(c, id)).isEmpty()) {
            double[] statistics = new MergeExecutor(options, p -> { }, cancelled).statistics(located).orElseThrow();
            db.transaction(c -> JobTable.storeStatistics(c, id, owner, statistics));
        }
        db.transaction(c -> {
            TaskTable.insert(c, id, plan);
            return null;
        });
        LOG.infof("Job %s: split into %d shard tasks", id, plan.shards().size());
        long splitStart = System.nanoTime();
        while (true) {
            Uploads.stopIfCancelled(cancelled);
            List<ShardTask> tasks = db.read(c -> TaskTable.list(c, id));
            progress.set(progress(tasks, plan, System.nanoTime() - splitStart));
            Optional<ShardTask> failed = tasks.stream().filter(t -> t.state() == ShardTask.State.FAILED).findFirst();
            if (failed.isPresent()) {
                throw new RecipeException(failed.get().error());
            }
            Optional<ShardTask> exhausted = tasks.stream().filter(t -> t.state() != ShardTask.State.DONE && !t.held()
                    && t.attempts() >= job.maxAttempts()).findFirst();
            if (exhausted.isPresent()) {
                throw new RecipeException("shard " + exhausted.get().file() + " was not merged in " + job.maxAttempts()
                        + " attempts: each ended without finishing (its worker stopped)");
            }
            if (tasks.stream().allMatch(t -> t.state() == ShardTask.State.DONE)) {
                List<ShardTask> missing = missingUploads(tasks, output);
                if (missing.isEmpty()) {
                    break;
                }
                LOG.warnf("Job %s: %d shard upload(s) missing or changed; merging them again", id, missing.size());
                db.transaction(c -> {
                    for (ShardTask t : missing) {
                        TaskTable.requeue(c, id, t.shard());
                    }
                    return null;
                });
                continue;
            }
            Optional<ShardTask> mine = db.transaction(c -> TaskTable.claim(c, owner + "-c", config.lease(),
                    Optional.of(id)));
            if (mine.isPresent()) {
                shards.run(mine.get(), owner + "-c", cancelled);
            } else {
                Uploads.sleep(config.pollInterval(), cancelled);
            }
        }
        return new MergeExecutor(options, p -> { }, cancelled).commitSplit(located, work.resolve("out"));
    }

    /** The tasks whose upload is not there with the size and CRC32C their worker recorded. */
    private static List<ShardTask> missingUploads(List<ShardTask> tasks, BlobStore output) throws IOException {
        List<ShardTask> missing = new java.util.ArrayList<>();
        for (ShardTask t : tasks) {
            var stored = output.head(t.file());
            if (stored.isEmpty() || stored.get().size() != t.size()
                    || stored.get().crc32c().map(crc -> !crc.equals(t.crc32c())).orElse(false)) {
                missing.add(t);
            }
        }
        return missing;
    }

    /**
     * A split job's progress after {@code elapsedNanos} of this attempt's shard phase: shards done of all, bytes
     * merged of all (as the shards' workers last reported them), and the rate and time left that gives.
     */
    private static JobProgress progress(List<ShardTask> tasks, SplitPlan plan, long elapsedNanos) {
        long done = tasks.stream().filter(t -> t.state() == ShardTask.State.DONE).count();
        long bytes = tasks.stream().mapToLong(ShardTask::bytesDone).sum();
        double seconds = elapsedNanos / 1e9;
        double rate = seconds > 0 ? bytes / seconds : 0;
        double eta = rate > 0 ? (plan.bytes() - bytes) / rate : 0;
        return new JobProgress(done, plan.shards().size(), bytes, plan.bytes(), rate, eta);
    }

    /**
     * Deletes a job's uploads once no worker still holds one of its shard tasks (its queued tasks are failed
     * first, so the running ones see the job end at their next renewal and stop, deleting what they uploaded; a
     * killed one's lease runs out), then forgets its tasks.
     */
    private boolean deleteUploadsAndTasks(MergeJob job) {
        db.transaction(c -> {
            TaskTable.failQueued(c, job.id(), "the job ended");
            return null;
        });
        long deadline = System.nanoTime() + config.lease().multipliedBy(2).toNanos();
        while (db.read(c -> TaskTable.anyHeld(c, job.id())) && System.nanoTime() < deadline) {
            try {
                Thread.sleep(Math.max(50, config.pollInterval().toMillis()));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        boolean cleaned = outputs.deleteUploads(job);
        db.transaction(c -> {
            TaskTable.delete(c, job.id());
            return null;
        });
        return cleaned;
    }

    private void renew(MergeJob job, String owner, AtomicReference<JobProgress> progress, AtomicBoolean cancelled,
                       AtomicBoolean lost, AtomicBoolean stopping) {
        try {
            Optional<Boolean> state = db.transaction(c ->
                    JobTable.renew(c, job.id(), owner, config.lease(), progress.get()));
            if (state.isEmpty()) {
                lost.set(true);
                cancelled.set(true);
            } else if (state.get() || stopping.get()) {
                cancelled.set(true);
            }
        } catch (RuntimeException e) {
            LOG.warnf("Job %s: renewing the lease failed: %s", job.id(), e.getMessage());
        }
    }

    private static Map<String, Object> mergeMetrics(MergeResult result, double seconds) {
        Map<String, Object> metrics = new LinkedHashMap<>();
        metrics.put("merge_seconds", seconds);
        metrics.put("tensor_bytes", (double) result.tensorBytes());
        metrics.put("bytes_per_second", result.tensorBytes() / Math.max(seconds, 1e-9));
        metrics.put("tensors", (double) result.tensors());
        return metrics;
    }

    /** A search's: its seconds, the winner's score and the evaluations it sent (cached scores not counted). */
    private static Map<String, Object> searchMetrics(SearchRecipes.Outcome outcome, double seconds) {
        Map<String, Object> metrics = new LinkedHashMap<>();
        metrics.put("search_seconds", seconds);
        metrics.put("score", outcome.score());
        metrics.put("evaluations", (double) outcome.evaluations());
        return metrics;
    }

    /**
     * @param recipe the job's recipe as written (its refs name the pinned inputs)
     * @param search a search job's outcome: its parents are the models the chosen merge is made of, and its
     *               parameters record the evaluator and every candidate's score
     */
    private static Map<String, Object> versionBody(MergeJob job, Recipe recipe, String target,
                                                   Map<String, Object> metrics, Map<String, String> mergedBy,
                                                   Optional<SearchRecipes.Outcome> search)
            throws RecipeException, IOException {
        Map<String, Object> parameters = new LinkedHashMap<>();
        parameters.put("job_id", job.id().toString());
        parameters.put("submitted_by", job.submitter().name()); // the version's created_by is the service's token
        parameters.put("seed", job.request().seed());
        parameters.put("memory_bytes", job.request().memoryBytes());
        parameters.put("out_dtype", job.request().outDtype());
        parameters.put("engine_version", engineVersion());
        parameters.put("inputs", job.request().pinned());
        if (!mergedBy.isEmpty()) {
            parameters.put("shards_merged_by", mergedBy); // a split job: which worker merged each shard
        }
        // a merge's parents are every pinned input; a search's, the models its chosen merge is made of
        Collection<Pin> sources = job.request().pinned().values();
        if (search.isPresent()) {
            parameters.put("evaluator", search.get().evaluator());
            parameters.put("search", JSON.readValue(search.get().report(), Map.class));
            sources = search.get().chosen().stream().map(job.request().pinned()::get).filter(Objects::nonNull).toList();
        }
        List<Map<String, String>> parents = sources.stream()
                .filter(p -> !p.version().isEmpty()).map(Pin::version).distinct()
                .map(v -> Map.of("ref", v, "relation", "merge")).toList();
        String format = "checkpoint";
        if (MergeMethods.named(recipe.mergeMethod()) instanceof DeltaMethod method) {
            // a delta names its base (delta; adapter for a low-rank one, a PEFT adapter) and its fine-tune (delta_of)
            boolean lowRank = method.kind() == DeltaMethod.Kind.LOWRANK;
            format = lowRank ? "peft_adapter" : "delta";
            parents = new java.util.ArrayList<>();
            addParent(parents, job.request().pinned().get(recipe.baseModel().orElse("")), lowRank ? "adapter" : "delta");
            addParent(parents, job.request().pinned().get(recipe.models().getFirst().model()), "delta_of");
        }
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("storage_uri", target);
        body.put("format", format);
        body.put("parents", parents);
        body.put("recipe", job.request().recipe());
        body.put("parameters", parameters);
        body.put("metrics", metrics);
        body.put("tags", job.request().outputTags());
        body.put("description", job.request().outputDescription());
        return body;
    }

    private static void addParent(List<Map<String, String>> parents, Pin pin, String relation) {
        if (pin != null && !pin.version().isEmpty()) {
            parents.add(Map.of("ref", pin.version(), "relation", relation));
        }
    }

    private static String engineVersion() {
        String version = MergeExecutor.class.getPackage().getImplementationVersion();
        return version == null ? "dev" : version;
    }

    private void finish(MergeJob job, String owner, JobStatus state, String error, String result, JobProgress progress,
                        boolean cleaned) {
        boolean held = db.transaction(c -> JobTable.finish(c, job.id(), owner, state, error, result, progress, cleaned));
        if (!held) {
            LOG.warnf("Job %s: could not record %s, the lease had moved on", job.id(), state);
            return;
        }
        reportFinished(job, state, error, result);
    }

    /**
     * Tells the registry the job ended, for the output namespace's {@code job.finished} webhooks. Once: a registry
     * unreachable now loses this event (the job's own record is complete either way).
     */
    private void reportFinished(MergeJob job, JobStatus state, String error, String result) {
        Map<String, Object> finished = new LinkedHashMap<>();
        finished.put("id", job.id().toString());
        finished.put("state", state.name());
        finished.put("result_version", result);
        finished.put("error", error);
        finished.put("submitted_by", job.submitter().name());
        try {
            registry.send("POST", "events/job-finished", Map.of("model", job.request().outputModel(), "job", finished));
        } catch (IOException e) {
            LOG.warnf("Job %s: the registry was not told it ended (%s)", job.id(), e.getMessage());
        }
    }

    /** What a failed job says: the failure's own message, never a class name or a trace. */
    private static String message(Exception e) {
        if (e instanceof RecipeException || e instanceof IOException || e instanceof UncheckedIOException) {
            return e.getMessage();
        }
        String reference = UUID.randomUUID().toString();
        LOG.errorf(e, "Unexpected failure (reference %s)", reference);
        return "internal error (reference " + reference + " in the merge service's log)";
    }

    /** Stops every run in progress at its next block: this replica is stopping. */
    void stopAll() {
        running.values().forEach(flag -> flag.set(true));
    }

    void stop() {
        renewals.shutdownNow();
    }
}
