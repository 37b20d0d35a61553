package io.modelmerge.mergeservice.jobs;

import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.mergeservice.MergeServiceConfig;
import io.modelmerge.service.db.Database;
import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.StorageResolver;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.jboss.logging.Logger;

/**
 * Runs one claimed shard task of a split job: merges that shard alone into a local work directory while renewing
 * the task's lease (and noticing the job's end), uploads it under the job's prefix, checks it there, and records
 * it done with its size and CRC32C. A task whose worker dies is claimed again once its lease runs out; one that
 * fails on something passing is queued again; any other failure fails the task, and its job with it.
 */
@ApplicationScoped
public class ShardRun {
    private static final Logger LOG = Logger.getLogger(ShardRun.class);

    private final Database db;
    private final MergeServiceConfig config;
    private final JobOutputs outputs;
    private final StorageResolver storage;
    private final Uploads uploads;
    private final ScheduledExecutorService renewals = Executors.newScheduledThreadPool(1,
            Thread.ofPlatform().daemon().name("task-lease-renewal").factory());

    public ShardRun(Database db, MergeServiceConfig config, JobOutputs outputs, StorageResolver storage,
                    Uploads uploads) {
        this.db = db;
        this.config = config;
        this.outputs = outputs;
        this.storage = storage;
        this.uploads = uploads;
    }

    /** Runs {@code task}, claimed by {@code owner}; {@code stopping} set stops it (this replica is stopping). */
    void run(ShardTask task, String owner, AtomicBoolean stopping) {
        UUID id = task.jobId();
        MergeJob job = db.read(c -> JobTable.find(c, id)).orElseThrow();
        AtomicBoolean cancelled = new AtomicBoolean(stopping.get());
        AtomicBoolean lost = new AtomicBoolean();
        AtomicBoolean jobEnded = new AtomicBoolean();
        AtomicLong bytesDone = new AtomicLong();
        ScheduledFuture<?> renewal = renewals.scheduleAtFixedRate(() -> {
            try {
                Optional<Boolean> ended = db.transaction(c -> TaskTable.renew(c, id, task.shard(), owner, config.lease(),
                        bytesDone.get()));
                if (ended.isEmpty()) {
                    lost.set(true);
                    cancelled.set(true);
                } else if (ended.get()) {
                    jobEnded.set(true);
                    cancelled.set(true);
                } else if (stopping.get()) {
                    cancelled.set(true);
                }
            } catch (RuntimeException e) {
                LOG.warnf("Job %s shard %d: renewing the lease failed: %s", id, task.shard(), e.getMessage());
            }
        }, 0, Math.clamp(config.lease().toMillis() / 3, 100, 1000), TimeUnit.MILLISECONDS);
        Path work = outputs.shardWorkDir(id, task.shard());
        BlobStore output = null;
        boolean uploaded = false;
        try {
            output = outputs.uploads(job);
            JobOutputs.deleteTree(work);
            Recipe located = JobRecipes.located(job);
            Optional<double[]> statistics = db.read(c -> JobTable.statistics(c, id));
            String file = new MergeExecutor(JobRecipes.options(config, job.request(), storage),
                    p -> bytesDone.set(p.bytesDone()), cancelled).mergeShard(located, statistics, task.shard(), work);
            Uploads.stopIfCancelled(cancelled);
            BlobInfo written = uploads.upload(work.resolve(file), output, cancelled);
            uploaded = true;
            Uploads.stopIfCancelled(cancelled);
            boolean held = db.transaction(c -> TaskTable.done(c, id, task.shard(), owner, written.size(),
                    written.crc32c().orElse("")));
            if (held) {
                LOG.infof("Job %s: shard %d (%s) merged and uploaded", id, task.shard(), file);
            } else {
                LOG.warnf("Job %s: shard %d was taken over by another worker; its upload is the same bytes", id,
                        task.shard());
            }
        } catch (Exception e) {
            ended(task, owner, e, cancelled, lost, jobEnded, stopping, output, uploaded);
        } finally {
            renewal.cancel(false);
            JobOutputs.deleteTree(work);
            JobOutputs.closeQuietly(output);
        }
    }

    private void ended(ShardTask task, String owner, Exception e, AtomicBoolean cancelled, AtomicBoolean lost,
                       AtomicBoolean jobEnded, AtomicBoolean stopping, BlobStore output, boolean uploaded) {
        UUID id = task.jobId();
        if (lost.get()) {
            LOG.warnf("Job %s: shard %d's lease was lost; leaving it to the worker that took it", id, task.shard());
            return;
        }
        if (jobEnded.get() && uploaded && output != null) {
            try {
                output.delete(task.file()); // the job is over: what this task uploaded goes
            } catch (IOException | UncheckedIOException deleteFailed) {
                LOG.warnf("Job %s: could not delete shard %s: %s", id, task.file(), deleteFailed.getMessage());
            }
        }
        if (cancelled.get()) {
            boolean handBack = stopping.get() && !jobEnded.get();
            db.transaction(c -> {
                TaskTable.end(c, id, task.shard(), owner, Optional.empty(), handBack);
                return null;
            });
            LOG.infof("Job %s: shard %d stopped (%s)", id, task.shard(), handBack ? "this replica is stopping"
                    : "the job ended");
            return;
        }
        boolean passing = Uploads.passing(e) && task.attempts() < config.maxAttempts();
        String message = e instanceof RecipeException || e instanceof IOException || e instanceof UncheckedIOException
                ? e.getMessage() : "shard " + task.shard() + ": " + e;
        if (!passing) {
            LOG.errorf(e, "Job %s: shard %d failed", id, task.shard());
        } else {
            LOG.warnf("Job %s: shard %d failed on something passing, queued again: %s", id, task.shard(), message);
        }
        db.transaction(c -> {
            TaskTable.end(c, id, task.shard(), owner, passing ? Optional.empty()
                    : Optional.of("shard " + task.file() + ": " + message), false);
            return null;
        });
    }

    void stop() {
        renewals.shutdownNow();
    }
}
