package io.modelmerge.engine.method;

import java.util.Arrays;

/**
 * Orders the elements of one row by magnitude, for the methods that rank within a row: ascending |value|, equal
 * magnitudes in index order. A stable LSD radix sort on the 31 bits of |value| (non-negative floats order like
 * their bits), three passes of 11 bits over (key, index) pairs packed in longs, so no pass reads through an index;
 * the three digits' histograms are counted in the one pass that packs the pairs. Its arrays belong to the calling
 * thread ({@link #forThread()}) and are reused row after row: what it returns is valid until its next call.
 */
final class RowRanks {
    private static final int BITS = 11;
    private static final int BUCKETS = 1 << BITS;
    private static final int DIGITS = 3;
    private static final ThreadLocal<RowRanks> WORKSPACE = ThreadLocal.withInitial(RowRanks::new);

    private long[] pairs = new long[0];
    private long[] next = new long[0];
    private int[] result = new int[0];
    private final int[] counts = new int[DIGITS * BUCKETS];

    private RowRanks() {
    }

    /** This thread's workspace. */
    static RowRanks forThread() {
        return WORKSPACE.get();
    }

    /**
     * The indices of {@code values[from..from+length)} (relative to {@code from}) in ascending order of magnitude:
     * entry r is the index of the element of rank r.
     */
    int[] ascendingByMagnitude(float[] values, int from, int length) {
        long[] sorted = sort(values, from, length);
        for (int r = 0; r < length; r++) {
            result[r] = (int) sorted[r];
        }
        return result;
    }

    /** The rank of each of {@code values[from..from+length)} in that order: entry i is element i's rank. */
    int[] ranks(float[] values, int from, int length) {
        long[] sorted = sort(values, from, length);
        for (int r = 0; r < length; r++) {
            result[(int) sorted[r]] = r;
        }
        return result;
    }

    private long[] sort(float[] values, int from, int length) {
        if (pairs.length < length) {
            pairs = new long[length];
            next = new long[length];
            result = new int[length];
        }
        Arrays.fill(counts, 0);
        for (int i = 0; i < length; i++) {
            int key = Float.floatToRawIntBits(values[from + i]) & 0x7FFFFFFF;
            pairs[i] = (long) key << 32 | i;
            counts[key & (BUCKETS - 1)]++;
            counts[BUCKETS + ((key >>> BITS) & (BUCKETS - 1))]++;
            counts[2 * BUCKETS + (key >>> 2 * BITS)]++;
        }
        long[] in = pairs;
        long[] out = next;
        for (int digit = 0; digit < DIGITS; digit++) {
            int base = digit * BUCKETS;
            int shift = 32 + digit * BITS;
            if (length == 0 || counts[base + (int) ((in[0] >>> shift) & (BUCKETS - 1))] == length) {
                continue; // every key has this digit: the pass would not move anything
            }
            int start = 0;
            for (int b = base; b < base + BUCKETS; b++) {
                int count = counts[b];
                counts[b] = start;
                start += count;
            }
            for (int i = 0; i < length; i++) {
                long pair = in[i];
                out[counts[base + (int) ((pair >>> shift) & (BUCKETS - 1))]++] = pair;
            }
            long[] swap = in;
            in = out;
            out = swap;
        }
        return in;
    }
}
