package io.modelmerge.engine.exec;

import io.modelmerge.engine.compute.ComputeBackend;
import io.modelmerge.storage.blob.LocalRoots;
import io.modelmerge.storage.blob.S3Settings;
import java.nio.file.Path;

/**
 * How to run a merge.
 *
 * @param memoryBytes  the budget for what the merge holds in memory (work buffers, LoRA-applied tensors);
 *                     mapped input files are paged by the OS and not counted
 * @param threads      worker threads
 * @param seed         the job's seed; each tensor's randomness derives from it and the tensor's name
 * @param outShardSize the largest shard of the output, in bytes
 * @param cacheDir     where remote (s3://) inputs are downloaded to be mapped
 * @param localRoots   which local paths the inputs may name: anywhere for the command line, configured roots for
 *                     a service
 * @param maxBytesPerSecond the highest rate at which the merge writes its output, so a merge shares disks and
 *                     networks with other work (0: as fast as it can)
 * @param backend      where the dense linear algebra runs (LoRA products, adapter factorisations)
 */
public record MergeOptions(long memoryBytes, int threads, long seed, long outShardSize, S3Settings s3,
                           Path cacheDir, long cacheBytes, LocalRoots localRoots, long maxBytesPerSecond,
                           ComputeBackend backend) {

    public static final long DEFAULT_MEMORY = 2L << 30;
    public static final long DEFAULT_SHARD_SIZE = 5_000_000_000L;

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
                S3Settings.defaults(), Path.of(System.getProperty("java.io.tmpdir"), "modelmerge-cache"), 64L << 30,
                LocalRoots.anywhere(), 0, ComputeBackend.cpu());
    }

    public MergeOptions withMemory(long bytes) {
        return new MergeOptions(bytes, threads, seed, outShardSize,
                s3, cacheDir, cacheBytes, localRoots, maxBytesPerSecond, backend);
    }

    public MergeOptions withThreads(int count) {
        return new MergeOptions(memoryBytes, count, seed, outShardSize,
                s3, cacheDir, cacheBytes, localRoots, maxBytesPerSecond, backend);
    }

    public MergeOptions withSeed(long value) {
        return new MergeOptions(memoryBytes, threads, value, outShardSize,
                s3, cacheDir, cacheBytes, localRoots, maxBytesPerSecond, backend);
    }

    public MergeOptions withOutShardSize(long bytes) {
        return new MergeOptions(memoryBytes, threads, seed, bytes,
                s3, cacheDir, cacheBytes, localRoots, maxBytesPerSecond, backend);
    }

    public MergeOptions withCache(Path dir, long bytes) {
        return new MergeOptions(memoryBytes, threads, seed, outShardSize,
                s3, dir, bytes, localRoots, maxBytesPerSecond, backend);
    }

    public MergeOptions withLocalRoots(LocalRoots roots) {
        return new MergeOptions(memoryBytes, threads, seed, outShardSize,
                s3, cacheDir, cacheBytes, roots, maxBytesPerSecond, backend);
    }

    public MergeOptions withMaxBytesPerSecond(long rate) {
        return new MergeOptions(memoryBytes, threads, seed, outShardSize,
                s3, cacheDir, cacheBytes, localRoots, rate, backend);
    }

    public MergeOptions withBackend(ComputeBackend compute) {
        return new MergeOptions(memoryBytes, threads, seed, outShardSize,
                s3, cacheDir, cacheBytes, localRoots, maxBytesPerSecond, compute);
    }

    public MergeOptions withS3(S3Settings settings) {
        return new MergeOptions(memoryBytes, threads, seed, outShardSize,
                settings, cacheDir, cacheBytes, localRoots, maxBytesPerSecond, backend);
    }
}
