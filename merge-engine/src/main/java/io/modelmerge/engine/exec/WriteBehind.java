package io.modelmerge.engine.exec;

import java.io.IOException;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Write-back beside the work: each time the bytes done grow by a given step, one background flush of the output
 * starts (unless one is still running), so the disk works while the CPUs do and the final sync has little left.
 */
final class WriteBehind implements AutoCloseable {

    /** Pushes what was written so far to disk. */
    @FunctionalInterface
    interface Flush {
        void run() throws IOException;
    }

    private final Flush flush;
    private final long every;
    private final ExecutorService flusher = Executors.newSingleThreadExecutor(Thread.ofPlatform().daemon().factory());
    private Future<?> flushing = CompletableFuture.completedFuture(null);
    private long flushedAt;

    /** Flushes with {@code flush} each time the bytes done have grown by {@code every}. */
    WriteBehind(Flush flush, long every) {
        this.flush = flush;
        this.every = every;
    }

    /** Starts a background flush if {@code bytesDone} has grown by a flush's worth and none is running. */
    synchronized void reached(long bytesDone) {
        if (bytesDone - flushedAt > every && flushing.isDone()) {
            flushedAt = bytesDone;
            flushing = flusher.submit(() -> {
                flush.run();
                return null;
            });
        }
    }

    /** Waits for the running flush, if any; its failure is this call's. */
    void await() throws IOException {
        Future<?> running;
        synchronized (this) {
            running = flushing;
        }
        try {
            running.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CancellationException("interrupted waiting for write-back");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
        }
    }

    @Override
    public void close() {
        flusher.shutdownNow();
    }
}
