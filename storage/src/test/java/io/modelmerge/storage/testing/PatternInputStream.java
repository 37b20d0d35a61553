package io.modelmerge.storage.testing;

import java.io.InputStream;
import java.util.SplittableRandom;

/** A long stream of reproducible pseudo-random bytes that is never held in memory. */
public final class PatternInputStream extends InputStream {
    private final SplittableRandom random;
    private long remaining;

    public PatternInputStream(long seed, long length) {
        this.random = new SplittableRandom(seed);
        this.remaining = length;
    }

    @Override
    public int read() {
        if (remaining <= 0) {
            return -1;
        }
        remaining--;
        return random.nextInt(256);
    }

    @Override
    public int read(byte[] buffer, int offset, int length) {
        if (remaining <= 0) {
            return -1;
        }
        int n = (int) Math.min(length, remaining);
        for (int i = 0; i < n; i++) {
            buffer[offset + i] = (byte) random.nextInt(256);
        }
        remaining -= n;
        return n;
    }
}
