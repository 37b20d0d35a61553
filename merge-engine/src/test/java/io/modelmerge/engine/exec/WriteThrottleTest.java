package io.modelmerge.engine.exec;

import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

class WriteThrottleTest {

    @Test
    void noLimitNeverWaits() {
        new WriteThrottle(0, new AtomicBoolean(true)).written(Long.MAX_VALUE / 2);
    }

    @Test
    void aCancelledMergeStopsWaitingForItsRate() {
        AtomicBoolean cancelled = new AtomicBoolean();
        WriteThrottle throttle = new WriteThrottle(1, cancelled);
        Thread.ofPlatform().start(() -> {
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            cancelled.set(true);
        });
        // a day's worth of bytes at 1 byte/s: only the cancel ends the wait
        assertThrows(CancellationException.class, () -> throttle.written(86_400));
    }
}
