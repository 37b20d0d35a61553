package io.modelmerge.mergeservice.jobs;

import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeResult;
import io.modelmerge.engine.method.DeltaMethod;
import io.modelmerge.engine.method.MergeMethods;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.mergeservice.MergeServiceConfig;
import io.modelmerge.registry.client.RegistryClient;
import io.modelmerge.service.db.Database;
import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.ChecksumMismatchException;
import io.modelmerge.storage.blob.LocalBlobStore;
import io.modelmerge.storage.blob.OutsideRootsException;
import io.modelmerge.storage.blob.StorageResolver;
import io.modelmerge.storage.checkpoint.InvalidCheckpointException;
import io.modelmerge.storage.safetensors.SafetensorsFormatException;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
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

    private final Database db;
    private final RegistryClient registry;
    private final MergeServiceConfig config;
    private final JobOutputs outputs;
    private final StorageResolver storage;
    private final ScheduledExecutorService renewals = Executors.newScheduledThreadPool(1,
            Thread.ofPlatform().daemon().name("lease-renewal").factory());
    /** The stop flag of every run in progress, so a stopping replica halts them at once. */
    private final Map<UUID, AtomicBoolean> running = new ConcurrentHashMap<>();

    public MergeRun(Database db, RegistryClient registry, MergeServiceConfig config, JobOutputs outputs,
                    StorageResolver storage) {
        this.db = db;
        this.registry = registry;
        this.config = config;
        this.outputs = outputs;
        this.storage = storage;
    }

    /** How a run ended for the worker that ran it. */
    enum Outcome { FINISHED, LOST_LEASE, RELEASED, RETRY_LATER }

    /** A failure worth another attempt later: the registry or the storage could not be reached. */
    private static final class Passing extends IOException {
        Passing(String message, Throwable cause) {
            super(message, cause);
        }
    }

    Outcome run(UUID id, String owner, AtomicBoolean stopping) {
        MergeJob job = db.read(c -> JobTable.find(c, id)).orElseThrow();
        if (job.attempts() > job.maxAttempts()) {
            outputs.deleteWork(id);
            boolean cleaned = outputs.deleteUploads(job);
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
            MergeResult result = new MergeExecutor(JobRecipes.options(config, job.request(), storage),
                    p -> progress.set(JobProgress.of(p)), cancelled).run(JobRecipes.located(recipe,
                    job.request().pinned(), job.request().outDtype()), work.resolve("out"));
            List<String> files = upload(work.resolve("out"), output, cancelled);
            stopIfCancelled(cancelled);
            double seconds = (System.nanoTime() - start) / 1e9;
            Map<String, Object> body = versionBody(job, recipe, outputs.target(job), result, seconds);
            RegistryClient.Registered version = commit("registering the version", cancelled, () -> registry.register(
                    job.request().outputModel(), body, job.request().outputDescription()));
            registered = true;
            if (!version.created() && !version.jobId().equals(id.toString())) {
                // The same content was registered before by another job or by hand: that version stands, and
                // this copy goes. (One this job registered in an earlier attempt is the version itself.)
                outputs.deleteUploads(job);
            }
            if (!job.request().outputAlias().isEmpty()) {
                int number = Integer.parseInt(version.ref().substring(version.ref().lastIndexOf('@') + 1));
                commit("moving alias " + job.request().outputAlias(), cancelled, () -> {
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
        boolean cleaned = registered || outputs.deleteUploads(job);
        if (stopping.get() && !job.cancelRequested() && cancelled.get()) {
            db.transaction(c -> {
                JobTable.release(c, id, owner);
                return null;
            });
            LOG.infof("Job %s: handed back to the queue (this replica is stopping)", id);
            return Outcome.RELEASED;
        }
        if (cancelled.get()) {
            finish(job, owner, JobStatus.CANCELLED, "cancelled", "", progress, cleaned);
            return Outcome.FINISHED;
        }
        String message = message(e);
        if (passing(e) && job.attempts() < job.maxAttempts()) {
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

    /** Whether a job's attempt failed on something another attempt may not meet. */
    private static boolean passing(Exception e) {
        if (e instanceof Passing) {
            return true;
        }
        if (e instanceof UncheckedIOException unchecked) {
            return passing(unchecked.getCause());
        }
        // Storage that could not be read or written; not a file that is wrong or refused.
        return e instanceof IOException && !(e instanceof InvalidCheckpointException
                || e instanceof SafetensorsFormatException || e instanceof ChecksumMismatchException
                || e instanceof OutsideRootsException || e instanceof FileNotFoundException
                || e instanceof NoSuchFileException);
    }

    @FunctionalInterface
    private interface Call<T> {
        T run() throws IOException;
    }

    /**
     * One call that ends a job, tried up to {@code commit-tries} times with doubling waits while it fails on
     * something passing; then, or on any other failure, it fails the attempt. A cancel or stop ends the waiting.
     */
    private <T> T commit(String what, AtomicBoolean cancelled, Call<T> call) throws IOException {
        Duration wait = config.commitBackoff();
        for (int attempt = 1; ; attempt++) {
            try {
                return call.run();
            } catch (IOException e) {
                boolean passing = e instanceof RegistryClient.RegistryError ? RegistryClient.passing(e) : passing(e);
                if (!passing) {
                    throw e;
                }
                if (attempt >= config.commitTries()) {
                    throw new Passing(what + " failed " + attempt + " times: " + e.getMessage(), e);
                }
                LOG.warnf("%s failed (try %d of %d), again in %s: %s", what, attempt, config.commitTries(), wait,
                        e.getMessage());
                sleep(wait, cancelled);
                wait = wait.multipliedBy(2);
            }
        }
    }

    private static void sleep(Duration wait, AtomicBoolean cancelled) {
        long until = System.nanoTime() + wait.toNanos();
        while (System.nanoTime() < until) {
            stopIfCancelled(cancelled);
            try {
                Thread.sleep(Math.min(100, Math.max(1, (until - System.nanoTime()) / 1_000_000)));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CancellationException("interrupted");
            }
        }
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

    /**
     * Uploads every file of {@code dir} and checks each against the store's size and CRC32C. The CRC32C compared
     * is the one the upload computed while streaming the file, so the file is read once.
     */
    private List<String> upload(Path dir, BlobStore store, AtomicBoolean cancelled) throws IOException {
        List<Path> files;
        try (Stream<Path> list = Files.list(dir)) {
            files = list.filter(Files::isRegularFile).sorted().toList();
        }
        for (Path file : files) {
            String name = file.getFileName().toString();
            commit("uploading " + store.describe(name), cancelled, () -> {
                BlobInfo written;
                try (InputStream in = Files.newInputStream(file)) {
                    written = store.write(name, in);
                }
                BlobInfo stored = store.head(name).orElseThrow(() ->
                        new IOException(store.describe(name) + ": missing after upload"));
                long size = Files.size(file);
                String sent = written.crc32c().orElseThrow();
                if (written.size() != size || stored.size() != size
                        || stored.crc32c().map(crc -> !crc.equals(sent)).orElse(false)) {
                    throw new ChecksumMismatchException(store.describe(name) + ": stored " + stored.size()
                            + " bytes, CRC32C " + stored.crc32c().orElse("?") + "; wrote " + size + " bytes, CRC32C " + sent);
                }
                return written;
            });
        }
        return files.stream().map(f -> f.getFileName().toString()).toList();
    }

    /** @param recipe the job's recipe as written (its refs name the pinned inputs) */
    private static Map<String, Object> versionBody(MergeJob job, Recipe recipe, String target, MergeResult result,
                                                   double seconds) throws RecipeException {
        Map<String, Object> parameters = new LinkedHashMap<>();
        parameters.put("job_id", job.id().toString());
        parameters.put("seed", job.request().seed());
        parameters.put("memory_bytes", job.request().memoryBytes());
        parameters.put("out_dtype", job.request().outDtype());
        parameters.put("engine_version", engineVersion());
        parameters.put("inputs", job.request().pinned());
        Map<String, Object> metrics = new LinkedHashMap<>();
        metrics.put("merge_seconds", seconds);
        metrics.put("tensor_bytes", (double) result.tensorBytes());
        metrics.put("bytes_per_second", result.tensorBytes() / Math.max(seconds, 1e-9));
        metrics.put("tensors", (double) result.tensors());
        List<Map<String, String>> parents = job.request().pinned().values().stream()
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
        }
    }

    private static void stopIfCancelled(AtomicBoolean cancelled) {
        if (cancelled.get()) {
            throw new CancellationException("merge cancelled");
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
