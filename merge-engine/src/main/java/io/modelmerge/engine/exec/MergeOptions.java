package io.modelmerge.engine.exec;

import io.modelmerge.engine.compute.ComputeBackend;
import io.modelmerge.storage.blob.S3Settings;
import io.modelmerge.storage.blob.StorageResolver;
import java.nio.file.Path;

/**
 * How to run a merge.
 *
 * @param memoryBytes  the budget for what the merge holds in memory (work buffers, LoRA-applied tensors);
 *                     mapped input files are paged by the OS and not counted
 * @param threads      worker threads
 * @param seed         the job's seed; each tensor's randomness derives from it and the tensor's name
 * @param outShardSize the largest shard of the output, in bytes
 * @param storage      opens the inputs' locations: S3 settings, and which local paths they may name (anywhere for
 *                     the command line, configured roots for a service)
 * @param cacheDir     where remote (s3://) inputs are downloaded to be mapped
 * @param maxBytesPerSecond the highest rate at which the merge writes its output, so a merge shares disks and
 *                     networks with other work (0: as fast as it can)
 * @param backend      where the dense linear algebra runs (LoRA products, adapter factorisations)
 * @param strict       refuse parameters the recipe's method does not take, rather than ignore them (as mergekit
 *                     does) and list them in the notes
 */
public record MergeOptions(long memoryBytes, int threads, long seed, long outShardSize, StorageResolver storage,
                           Path cacheDir, long cacheBytes, long maxBytesPerSecond, ComputeBackend backend,
                           boolean strict) {

    public static final long DEFAULT_MEMORY = 2L << 30;
    public static final long DEFAULT_SHARD_SIZE = 5_000_000_000L;
    /** Local paths anywhere and S3 from the standard variables; its S3 client, if made, lives as long as the JVM. */
    private static final StorageResolver DEFAULT_STORAGE = StorageResolver.unconfined(S3Settings.defaults());

    public MergeOptions {
        if (memoryBytes < (16L << 20)) {
            throw new IllegalArgumentException("memory budget " + memoryBytes + " is under the 16 MiB minimum");
        }
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
        if (outShardSize < 1) {
            throw new IllegalArgumentException("out shard size must be positive, got " + outShardSize);
        }
        if (maxBytesPerSecond < 0) {
            throw new IllegalArgumentException("max bytes per second must be 0 (no limit) or positive, got "
                    + maxBytesPerSecond);
        }
    }

    public static MergeOptions defaults() {
        return new MergeOptions(DEFAULT_MEMORY, Runtime.getRuntime().availableProcessors(), 0, DEFAULT_SHARD_SIZE,
                DEFAULT_STORAGE, Path.of(System.getProperty("java.io.tmpdir"), "modelmerge-cache"), 64L << 30, 0,
                ComputeBackend.cpu(), false);
    }

    public MergeOptions withMemory(long bytes) {
        return new MergeOptions(bytes, threads, seed, outShardSize, storage, cacheDir, cacheBytes, maxBytesPerSecond,
                backend, strict);
    }

    public MergeOptions withThreads(int count) {
        return new MergeOptions(memoryBytes, count, seed, outShardSize, storage, cacheDir, cacheBytes, maxBytesPerSecond,
                backend, strict);
    }

    public MergeOptions withSeed(long value) {
        return new MergeOptions(memoryBytes, threads, value, outShardSize, storage, cacheDir, cacheBytes,
                maxBytesPerSecond, backend, strict);
    }

    public MergeOptions withOutShardSize(long bytes) {
        return new MergeOptions(memoryBytes, threads, seed, bytes, storage, cacheDir, cacheBytes, maxBytesPerSecond,
                backend, strict);
    }

    public MergeOptions withStorage(StorageResolver resolver) {
        return new MergeOptions(memoryBytes, threads, seed, outShardSize, resolver, cacheDir, cacheBytes,
                maxBytesPerSecond, backend, strict);
    }

    public MergeOptions withCache(Path dir, long bytes) {
        return new MergeOptions(memoryBytes, threads, seed, outShardSize, storage, dir, bytes, maxBytesPerSecond,
                backend, strict);
    }

    public MergeOptions withMaxBytesPerSecond(long rate) {
        return new MergeOptions(memoryBytes, threads, seed, outShardSize, storage, cacheDir, cacheBytes, rate, backend,
                strict);
    }

    public MergeOptions withBackend(ComputeBackend compute) {
        return new MergeOptions(memoryBytes, threads, seed, outShardSize, storage, cacheDir, cacheBytes,
                maxBytesPerSecond, compute, strict);
    }

    public MergeOptions withStrict(boolean refuseUnknownParameters) {
        return new MergeOptions(memoryBytes, threads, seed, outShardSize, storage, cacheDir, cacheBytes,
                maxBytesPerSecond, backend, refuseUnknownParameters);
    }
}
