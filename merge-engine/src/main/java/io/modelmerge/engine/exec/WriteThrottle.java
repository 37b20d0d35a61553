package io.modelmerge.engine.exec;

import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Holds a merge's output to at most a given number of bytes per second: each writer, once its bytes are
 * counted, waits until the merge's start plus the time those bytes are allowed to take. A merge of N bytes so
 * takes at least N / rate seconds (less its first block), whatever the machine. Waits end early on cancel.
 */
final class WriteThrottle {
    private static final long SLICE_NANOS = 50_000_000L;

    private final long bytesPerSecond;
    private final AtomicBoolean cancelled;
    private final AtomicLong written = new AtomicLong();
    private final long start = System.nanoTime();

    /** @param bytesPerSecond 0 for no limit */
    WriteThrottle(long bytesPerSecond, AtomicBoolean cancelled) {
        this.bytesPerSecond = bytesPerSecond;
        this.cancelled = cancelled;
    }

    /** Counts {@code bytes} as written and waits until the rate allows them. */
    void written(long bytes) {
        if (bytesPerSecond == 0) {
            return;
        }
        long due = start + (long) (written.addAndGet(bytes) * 1e9 / bytesPerSecond);
        for (long left = due - System.nanoTime(); left > 0; left = due - System.nanoTime()) {
            if (cancelled.get()) {
                throw new CancellationException("merge cancelled");
            }
            try {
                Thread.sleep(Math.min(left, SLICE_NANOS) / 1_000_000L, (int) (Math.min(left, SLICE_NANOS) % 1_000_000L));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CancellationException("merge interrupted");
            }
        }
    }
}
