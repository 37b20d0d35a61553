package io.modelmerge.mergeservice.jobs;

import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeResult;
import io.modelmerge.mergeservice.MergeServiceConfig;
import io.modelmerge.mergeservice.registry.RegistryClient;
import io.modelmerge.service.db.Database;
import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.BlobStores;
import io.modelmerge.storage.blob.ChecksumMismatchException;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CancellationException;
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
 * the version with its pinned parents and moves the alias. Until the registry has the version, nothing is
 * visible; on failure or cancel the uploaded files are deleted.
 */
@ApplicationScoped
public class MergeRun {
    private static final Logger LOG = Logger.getLogger(MergeRun.class);

    private final Database db;
    private final RegistryClient registry;
    private final MergeServiceConfig config;
    private final ScheduledExecutorService renewals = Executors.newScheduledThreadPool(1,
            Thread.ofPlatform().daemon().name("lease-renewal").factory());

    public MergeRun(Database db, RegistryClient registry, MergeServiceConfig config) {
        this.db = db;
        this.registry = registry;
        this.config = config;
    }

    /** How a run ended for the worker that ran it. */
    enum Outcome { FINISHED, LOST_LEASE, RELEASED }

    Outcome run(UUID id, String owner, AtomicBoolean stopping) {
        MergeJob job = db.read(c -> JobTable.find(c, id)).orElseThrow();
        if (job.attempts() > job.maxAttempts()) {
            finish(job, owner, JobStatus.FAILED, "gave up after " + job.maxAttempts() + " attempts: each ended"
                    + " without finishing (its worker stopped)", "", job.progress());
            return Outcome.FINISHED;
        }
        AtomicBoolean cancelled = new AtomicBoolean(job.cancelRequested());
        AtomicBoolean lost = new AtomicBoolean();
        AtomicReference<JobProgress> progress = new AtomicReference<>(JobProgress.NONE);
        ScheduledFuture<?> renewal = renewals.scheduleAtFixedRate(() -> renew(job, owner, progress, cancelled, lost,
                stopping), 0, Math.clamp(config.lease().toMillis() / 3, 100, 1000), TimeUnit.MILLISECONDS);
        Path work = config.dataDir().resolve("work").resolve(id.toString());
        String target = config.resolvedOutputRoot().replaceAll("/+$", "") + "/" + job.request().outputModel() + "/" + id + "/";
        BlobStores.Located output;
        try {
            output = BlobStores.locate(target, config.s3().settings());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        boolean registered = false;
        try {
            deleteRecursively(work);
            long start = System.nanoTime();
            MergeResult result = new MergeExecutor(JobRecipes.options(config, job.request()),
                    p -> progress.set(JobProgress.of(p)), cancelled).run(JobRecipes.located(job), work.resolve("out"));
            List<String> files = upload(work.resolve("out"), output.store());
            stopIfCancelled(cancelled);
            double seconds = (System.nanoTime() - start) / 1e9;
            registry.ensureModel(job.request().outputModel(), job.request().outputDescription());
            String ref = registry.register(job.request().outputModel(), versionBody(job, target, result, seconds));
            registered = true;
            if (!job.request().outputAlias().isEmpty()) {
                registry.moveAlias(job.request().outputModel(), job.request().outputAlias(),
                        Integer.parseInt(ref.substring(ref.lastIndexOf('@') + 1)));
            }
            LOG.infof("Job %s: %s registered from %d files in %.1f s", id, ref, files.size(), seconds);
            finish(job, owner, JobStatus.SUCCEEDED, "", ref, progress.get());
            return Outcome.FINISHED;
        } catch (Exception e) {
            if (lost.get()) {
                LOG.warnf("Job %s: lease lost to another worker; leaving it to that one", id);
                return Outcome.LOST_LEASE;
            }
            if (!registered) {
                deleteQuietly(output.store());
            }
            if (stopping.get() && !job.cancelRequested() && cancelled.get()) {
                db.transaction(c -> {
                    JobTable.release(c, id, owner);
                    return null;
                });
                return Outcome.RELEASED;
            }
            boolean cancel = cancelled.get();
            if (!cancel) {
                LOG.errorf(e, "Job %s failed", id);
            }
            finish(job, owner, cancel ? JobStatus.CANCELLED : JobStatus.FAILED,
                    cancel ? "cancelled" : message(e), "", progress.get());
            return Outcome.FINISHED;
        } finally {
            renewal.cancel(false);
            deleteRecursively(work);
            try {
                output.store().close();
            } catch (IOException e) {
                LOG.debug("closing the output store failed", e);
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
    private static List<String> upload(Path dir, BlobStore store) throws IOException {
        List<Path> files;
        try (Stream<Path> list = Files.list(dir)) {
            files = list.filter(Files::isRegularFile).sorted().toList();
        }
        for (Path file : files) {
            String name = file.getFileName().toString();
            BlobInfo written;
            try (InputStream in = Files.newInputStream(file)) {
                written = store.write(name, in);
            }
            BlobInfo stored = store.head(name).orElseThrow(() -> new IOException(store.describe(name) + ": missing after upload"));
            long size = Files.size(file);
            String sent = written.crc32c().orElseThrow();
            if (written.size() != size || stored.size() != size || stored.crc32c().map(crc -> !crc.equals(sent)).orElse(false)) {
                throw new ChecksumMismatchException(store.describe(name) + ": stored " + stored.size() + " bytes, CRC32C "
                        + stored.crc32c().orElse("?") + "; wrote " + size + " bytes, CRC32C " + sent);
            }
        }
        return files.stream().map(f -> f.getFileName().toString()).toList();
    }

    private static Map<String, Object> versionBody(MergeJob job, String target, MergeResult result, double seconds) {
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
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("storage_uri", target);
        body.put("format", "checkpoint");
        body.put("parents", parents);
        body.put("recipe", job.request().recipe());
        body.put("parameters", parameters);
        body.put("metrics", metrics);
        body.put("tags", job.request().outputTags());
        body.put("description", job.request().outputDescription());
        return body;
    }

    private static String engineVersion() {
        String version = MergeExecutor.class.getPackage().getImplementationVersion();
        return version == null ? "dev" : version;
    }

    private void finish(MergeJob job, String owner, JobStatus state, String error, String result, JobProgress progress) {
        boolean held = db.transaction(c -> JobTable.finish(c, job.id(), owner, state, error, result, progress));
        if (!held) {
            LOG.warnf("Job %s: could not record %s, the lease had moved on", job.id(), state);
        }
    }

    private static void stopIfCancelled(AtomicBoolean cancelled) {
        if (cancelled.get()) {
            throw new CancellationException("merge cancelled");
        }
    }

    private static String message(Exception e) {
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    private static void deleteQuietly(BlobStore store) {
        try {
            for (BlobInfo blob : store.list("")) {
                store.delete(blob.key());
            }
        } catch (IOException e) {
            LOG.warnf("Could not delete the partial output %s: %s", store.root(), e.getMessage());
        }
    }

    private static void deleteRecursively(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            LOG.warnf("Could not delete %s: %s", dir, e.getMessage());
        }
    }

    void stop() {
        renewals.shutdownNow();
    }
}
