package io.modelmerge.engine.method;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * What one pass keeps, recorded by blocks of odd lengths from several threads at once (words shared between
 * blocks), is what a later pass keeps: the recorded nonzeros bit for bit, everything else zero.
 */
class KeptBitsTest {
    @Test
    void blocksRecordedConcurrentlyAreKeptExactly() throws Exception {
        Random random = new Random(8);
        int elements = 10_007;
        float[] values = new float[elements];
        for (int i = 0; i < elements; i++) {
            values[i] = random.nextInt(3) == 0 ? 0f : (float) random.nextGaussian();
        }
        values[5] = -0f; // kept: only +0 is what a dropped element holds
        KeptBits kept = new KeptBits(elements);
        List<int[]> blocks = new ArrayList<>();
        for (int from = 0; from < elements; ) {
            int length = Math.min(elements - from, 1 + random.nextInt(400)); // vector runs between scalar ends
            blocks.add(new int[] {from, length});
            from += length;
        }
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<?>> done = new ArrayList<>();
            for (int[] b : blocks) {
                float[] copy = Arrays.copyOfRange(values, b[0], b[0] + b[1]);
                done.add(pool.submit(() -> kept.recordNonzero(b[0], copy, 0, b[1])));
            }
            for (Future<?> f : done) {
                f.get();
            }
        } finally {
            pool.shutdown();
        }
        float[] later = new float[elements];
        for (int i = 0; i < elements; i++) {
            later[i] = i + 1f; // another pass's values at the same places
        }
        for (int[] b : blocks) {
            kept.keepRecorded(b[0], later, b[0], b[1]);
        }
        for (int i = 0; i < elements; i++) {
            float expected = Float.floatToRawIntBits(values[i]) != 0 ? i + 1f : 0f;
            assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(later[i]), "element " + i);
        }
    }
}
