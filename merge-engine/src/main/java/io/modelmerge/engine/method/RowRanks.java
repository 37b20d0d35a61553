package io.modelmerge.engine.method;

import java.util.Arrays;

/** Orders the elements of one row by magnitude, for the methods that rank within a row. */
final class RowRanks {
    private RowRanks() {
    }

    /**
     * The indices of {@code values[from..from+length)} (relative to {@code from}) by ascending |value|, equal
     * magnitudes in index order: a primitive sort of (|value| bits, index) pairs.
     */
    static int[] ascendingByMagnitude(float[] values, int from, int length) {
        long[] keys = new long[length];
        for (int i = 0; i < length; i++) {
            long bits = Float.floatToRawIntBits(values[from + i]) & 0x7FFFFFFFL; // |x| orders like its bits
            keys[i] = bits << 32 | i;
        }
        Arrays.sort(keys);
        int[] order = new int[length];
        for (int i = 0; i < length; i++) {
            order[i] = (int) keys[i];
        }
        return order;
    }
}
