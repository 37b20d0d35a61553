package io.modelmerge.mergeservice.jobs;

import io.modelmerge.mergeservice.MergeServiceConfig;
import io.modelmerge.service.db.Database;
import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.LocalDirectories;
import io.modelmerge.storage.blob.LocalRoots;
import io.modelmerge.storage.blob.StorageResolver;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;
import org.jboss.logging.Logger;

/**
 * Where a job's bytes live before they are a version, and their removal: the local work directory
 * ({@code <data dir>/work/<job id>/}) and the uploads ({@code <output root>/<ns>/<name>/<job id>/}). Every way a
 * job ends deletes both but a registered version's files; start-up deletes what a killed process left.
 */
@ApplicationScoped
public class JobOutputs {
    private static final Logger LOG = Logger.getLogger(JobOutputs.class);

    private final Database db;
    private final MergeServiceConfig config;
    /** The output root is the operator's setting, not a job's input: no local-roots rule applies to it. */
    private final StorageResolver storage;

    public JobOutputs(Database db, MergeServiceConfig config, StorageResolver storage) {
        this.db = db;
        this.config = config;
        this.storage = storage.withRoots(LocalRoots.anywhere());
    }

    Path workDir(UUID id) {
        return workRoot().resolve(id.toString());
    }

    /** Where a worker merges shard {@code shard} of split job {@code id} (beside the job's own directory). */
    Path shardWorkDir(UUID id, int shard) {
        return workRoot().resolve(id + ".shard-" + shard);
    }

    private Path workRoot() {
        return config.dataDir().resolve("work");
    }

    /** The URI the job's files are uploaded under and its version is registered from. */
    String target(MergeJob job) {
        return config.resolvedOutputRoot().replaceAll("/+$", "") + "/" + job.request().outputModel() + "/" + job.id() + "/";
    }

    BlobStore uploads(MergeJob job) throws IOException {
        return storage.locate(target(job)).store();
    }

    /** Where a search job's candidates are staged for its evaluator, each under its name: beside its uploads. */
    private String candidatesTarget(MergeJob job) {
        return target(job).replaceAll("/$", ".candidates/");
    }

    /** The store candidate {@code name} of search job {@code job} is staged in. */
    BlobStore candidate(MergeJob job, String name) throws IOException {
        return storage.locate(candidateTarget(job, name)).store();
    }

    private String candidateTarget(MergeJob job, String name) {
        return candidatesTarget(job) + name + "/";
    }

    void deleteWork(UUID id) {
        deleteTree(workDir(id));
    }

    /**
     * Deletes every file uploaded for {@code job} (and, locally, the directories left empty); true when nothing
     * is left. A failure is logged: start-up tries again for jobs not marked clean.
     */
    boolean deleteUploads(MergeJob job) {
        return deleteCandidates(job) & deleteUnder(job, target(job));
    }

    /** Deletes candidate {@code name} of search job {@code job} once scored; true when nothing of it is left. */
    boolean deleteCandidate(MergeJob job, String name) {
        return deleteUnder(job, candidateTarget(job, name));
    }

    /** Deletes every candidate staged for search job {@code job}; true when none is left. */
    boolean deleteCandidates(MergeJob job) {
        return deleteUnder(job, candidatesTarget(job));
    }

    private boolean deleteUnder(MergeJob job, String target) {
        try (BlobStore store = storage.locate(target).store()) {
            URI root = store.root();
            if ("file".equals(root.getScheme())) {
                // The whole directory: a process killed while uploading leaves a temporary file no listing shows.
                boolean deleted = deleteTree(Path.of(root));
                pruneEmpty(Path.of(root).getParent(), Path.of(URI.create(config.resolvedOutputRoot())));
                return deleted;
            }
            for (BlobInfo blob : store.list("")) {
                store.delete(blob.key());
            }
            return true;
        } catch (IOException | RuntimeException e) {
            LOG.warnf("Job %s: could not delete its uploads under %s: %s", job.id(), target, e.getMessage());
            return false;
        }
    }

    /**
     * What a killed or stopped process left: work directories of jobs no worker holds, and the uploads of
     * finished jobs that did not succeed and were not cleaned.
     */
    void sweep() {
        try (Stream<Path> entries = Files.isDirectory(workRoot()) ? Files.list(workRoot()) : Stream.empty()) {
            for (Path entry : entries.toList()) {
                UUID id = jobId(entry.getFileName().toString());
                if (id == null || !db.read(c -> JobTable.held(c, id))) {
                    deleteTree(entry);
                }
            }
        } catch (IOException e) {
            LOG.warnf("Could not look through %s: %s", workRoot(), e.getMessage());
        }
        List<MergeJob> uncleaned = db.read(JobTable::uncleaned);
        for (MergeJob job : uncleaned) {
            if (deleteUploads(job)) {
                db.transaction(c -> {
                    JobTable.markCleaned(c, job.id());
                    return null;
                });
            }
        }
        if (!uncleaned.isEmpty()) {
            LOG.infof("Deleted what %d finished job(s) had left", uncleaned.size());
        }
    }

    private static UUID jobId(String name) {
        try {
            return UUID.fromString(name);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /** Removes {@code dir} and its parents while empty, up to (not including) {@code stop}. */
    private static void pruneEmpty(Path dir, Path stop) {
        for (Path p = dir.toAbsolutePath().normalize(); p != null && p.startsWith(stop) && !p.equals(stop);
             p = p.getParent()) {
            try {
                Files.deleteIfExists(p);
            } catch (DirectoryNotEmptyException e) {
                return;
            } catch (IOException e) {
                LOG.debugf("Could not remove %s: %s", p, e.getMessage());
                return;
            }
        }
    }

    /** Deletes {@code dir} and everything in it; false (and a warning) if something could not be deleted. */
    static boolean deleteTree(Path dir) {
        try {
            LocalDirectories.delete(dir);
            return true;
        } catch (IOException | UncheckedIOException e) {
            LOG.warnf("Could not delete %s: %s", dir, e.getMessage());
            return false;
        }
    }

    static void closeQuietly(BlobStore store) {
        if (store != null) {
            try {
                store.close();
            } catch (IOException e) {
                LOG.debug("closing a store failed", e);
            }
        }
    }
}
