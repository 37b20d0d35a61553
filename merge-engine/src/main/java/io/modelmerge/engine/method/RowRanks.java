package io.modelmerge.engine.method;

/** Orders the elements of one row by magnitude, for the methods that rank within a row. */
final class RowRanks {
    private RowRanks() {
    }

    private static final int BITS = 11;
    private static final int BUCKETS = 1 << BITS;

    /**
     * The indices of {@code values[from..from+length)} (relative to {@code from}) by ascending |value|, equal
     * magnitudes in index order: a stable LSD radix sort on the 31 bits of |value| (non-negative floats order like
     * their bits), three passes of 11 bits.
     */
    static int[] ascendingByMagnitude(float[] values, int from, int length) {
        int[] keys = new int[length];
        int[] order = new int[length];
        for (int i = 0; i < length; i++) {
            keys[i] = Float.floatToRawIntBits(values[from + i]) & 0x7FFFFFFF;
            order[i] = i;
        }
        int[] next = new int[length];
        int[] counts = new int[BUCKETS];
        for (int shift = 0; shift < 31; shift += BITS) {
            java.util.Arrays.fill(counts, 0);
            for (int i = 0; i < length; i++) {
                counts[(keys[order[i]] >>> shift) & (BUCKETS - 1)]++;
            }
            int start = 0;
            for (int b = 0; b < BUCKETS; b++) {
                int count = counts[b];
                counts[b] = start;
                start += count;
            }
            for (int i = 0; i < length; i++) {
                int index = order[i];
                next[counts[(keys[index] >>> shift) & (BUCKETS - 1)]++] = index;
            }
            int[] swap = order;
            order = next;
            next = swap;
        }
        return order;
    }
}
