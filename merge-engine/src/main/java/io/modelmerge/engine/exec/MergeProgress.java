package io.modelmerge.engine.exec;

import java.time.Duration;

/** Where a running merge stands. */
public record MergeProgress(int tensorsDone, int tensorsTotal, long bytesDone, long bytesTotal, Duration elapsed) {

    /** Output bytes per second so far. */
    public double bytesPerSecond() {
        double seconds = elapsed.toNanos() / 1e9;
        return seconds > 0 ? bytesDone / seconds : 0;
    }

    /** Time left at the rate so far; zero when done, unknown (null) before any byte. */
    public Duration eta() {
        if (bytesDone >= bytesTotal) {
            return Duration.ZERO;
        }
        double rate = bytesPerSecond();
        return rate > 0 ? Duration.ofMillis((long) ((bytesTotal - bytesDone) / rate * 1000)) : null;
    }

    public double fraction() {
        return bytesTotal == 0 ? 1.0 : bytesDone / (double) bytesTotal;
    }
}
