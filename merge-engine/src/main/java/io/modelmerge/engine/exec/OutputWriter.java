package io.modelmerge.engine.exec;

import io.modelmerge.storage.checkpoint.CheckpointWriter;
import io.modelmerge.storage.checkpoint.ShardIndex;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * A merge's output shards in the staging directory: blocks are written at their final offsets from any thread,
 * and write-back runs beside the merge (every {@value #FLUSH_EVERY} bytes, one background flush) so the disk works
 * while the CPUs merge and the final sync has little left to do.
 */
final class OutputWriter implements AutoCloseable {
    private static final long FLUSH_EVERY = 256L << 20;

    private final CheckpointWriter writer;
    private final ExecutorService flusher = Executors.newSingleThreadExecutor(Thread.ofPlatform().daemon().factory());
    private Future<?> flushing = CompletableFuture.completedFuture(null);
    private long flushedAt;

    OutputWriter(Path staging, List<TensorSpec> specs, long shardSize) throws IOException {
        Files.createDirectories(staging);
        this.writer = CheckpointWriter.create(staging, specs, Map.of("format", "pt"), shardSize);
    }

    /** Writes {@code data} at byte {@code offset} of tensor {@code tensor}; thread-safe. */
    void write(String tensor, long offset, MemorySegment data) throws IOException {
        writer.write(tensor, offset, data);
    }

    /** Starts a background flush if {@code bytesDone} has grown by a flush's worth and none is running. */
    void flushBehind(long bytesDone) {
        if (bytesDone - flushedAt > FLUSH_EVERY && flushing.isDone()) {
            flushedAt = bytesDone;
            flushing = flusher.submit(() -> {
                writer.flush();
                return null;
            });
        }
    }

    /** Waits for write-back, syncs and moves the shards into place; the files written (index included). */
    List<String> commit() throws IOException {
        try {
            flushing.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CancellationException("merge interrupted");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
        }
        writer.commit();
        List<String> files = new ArrayList<>(writer.fileNames());
        if (writer.sharded()) {
            files.add(ShardIndex.FILE_NAME);
        }
        return files;
    }

    @Override
    public void close() throws IOException {
        flusher.shutdownNow();
        writer.close();
    }
}
