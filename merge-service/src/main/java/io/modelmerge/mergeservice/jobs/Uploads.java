package io.modelmerge.mergeservice.jobs;

import io.modelmerge.mergeservice.MergeServiceConfig;
import io.modelmerge.registry.client.RegistryClient;
import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.ChecksumMismatchException;
import io.modelmerge.storage.blob.OutsideRootsException;
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
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.jboss.logging.Logger;

/**
 * The calls that end a job's work, tried again while they fail on something passing: uploads checked against
 * the store, registrations. What counts as passing (the registry or the storage unreachable) is decided here.
 */
@ApplicationScoped
public class Uploads {
    private static final Logger LOG = Logger.getLogger(Uploads.class);

    private final MergeServiceConfig config;

    public Uploads(MergeServiceConfig config) {
        this.config = config;
    }

    /** A failure worth another attempt later: the registry or the storage could not be reached. */
    static final class Passing extends IOException {
        Passing(String message, Throwable cause) {
            super(message, cause);
        }
    }

    @FunctionalInterface
    interface Call<T> {
        T run() throws IOException;
    }

    /** Whether an attempt failed on something another attempt may not meet. */
    static boolean passing(Exception e) {
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

    /**
     * One call, tried up to {@code commit-tries} times with doubling waits while it fails on something passing;
     * then, or on any other failure, it fails. A cancel ends the waiting.
     */
    <T> T withRetries(String what, AtomicBoolean cancelled, Call<T> call) throws IOException {
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

    /**
     * Uploads every file of {@code dir}, each checked against the store's size and CRC32C; returns their names.
     */
    List<String> uploadAll(Path dir, BlobStore store, AtomicBoolean cancelled) throws IOException {
        List<Path> files;
        try (Stream<Path> list = Files.list(dir)) {
            files = list.filter(Files::isRegularFile).sorted().toList();
        }
        List<String> names = new ArrayList<>();
        for (Path file : files) {
            upload(file, store, cancelled);
            names.add(file.getFileName().toString());
        }
        return names;
    }

    /**
     * Uploads {@code file} under its name and checks it against the store's size and CRC32C: the CRC32C compared
     * is the one the upload computed while streaming the file, so the file is read once.
     */
    BlobInfo upload(Path file, BlobStore store, AtomicBoolean cancelled) throws IOException {
        String name = file.getFileName().toString();
        return withRetries("uploading " + store.describe(name), cancelled, () -> {
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

    static void sleep(Duration wait, AtomicBoolean cancelled) {
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

    static void stopIfCancelled(AtomicBoolean cancelled) {
        if (cancelled.get()) {
            throw new CancellationException("merge cancelled");
        }
    }
}
