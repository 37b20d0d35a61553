package io.modelmerge.engine.exec;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Counts a merge's tensors and bytes done, from any thread, and tells the listener at most five times a second,
 * and once at the end; written bytes also go through the merge's {@link WriteThrottle}.
 */
final class ProgressReporter {
    private static final long EVERY_NANOS = 200_000_000L;

    private final MergeExecutor.MergeListener listener;
    private final WriteThrottle throttle;
    private final int tensorsTotal;
    private final long bytesTotal;
    private final long start = System.nanoTime();
    private final AtomicInteger tensorsDone = new AtomicInteger();
    private final AtomicLong bytesDone = new AtomicLong();
    private final AtomicLong lastReport = new AtomicLong();

    ProgressReporter(MergeExecutor.MergeListener listener, WriteThrottle throttle, int tensorsTotal, long bytesTotal) {
        this.listener = listener;
        this.throttle = throttle;
        this.tensorsTotal = tensorsTotal;
        this.bytesTotal = bytesTotal;
    }

    /** {@code bytes} of output written (the throttle may hold the caller here). */
    void written(long bytes) {
        bytesDone.addAndGet(bytes);
        throttle.written(bytes);
        report();
    }

    void tensorDone() {
        tensorsDone.incrementAndGet();
        report();
    }

    long bytesDone() {
        return bytesDone.get();
    }

    private void report() {
        long now = System.nanoTime();
        long last = lastReport.get();
        if (now - last > EVERY_NANOS && lastReport.compareAndSet(last, now)) {
            listener.progress(new MergeProgress(tensorsDone.get(), tensorsTotal, bytesDone.get(), bytesTotal,
                    Duration.ofNanos(now - start)));
        }
    }

    /** The last report: everything done. */
    void finished() {
        listener.progress(new MergeProgress(tensorsTotal, tensorsTotal, bytesTotal, bytesTotal,
                Duration.ofNanos(System.nanoTime() - start)));
    }
}
