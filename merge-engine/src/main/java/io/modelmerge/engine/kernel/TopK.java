package io.modelmerge.engine.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The magnitude threshold that keeps the {@code k} largest |values| of a tensor, found by a two-level radix
 * select on the bits of |value| (non-negative floats order like their bit patterns): one pass histograms the
 * high 16 bits, a second pass histograms the low 15 bits of the elements in the chosen bucket. O(n), never a
 * sort, and the data can arrive block by block in any order. Elements equal to the threshold are all kept,
 * so ties may keep a few more than k.
 */
public final class TopK {
    private static final int HIGH_BUCKETS = 1 << 16;
    private static final int LOW_BUCKETS = 1 << 15;

    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> IS = IntVector.SPECIES_PREFERRED;

    private final long k;
    // Each pass needs one of the two histograms; they are allocated when first used.
    private long[] high;
    private long[] low;
    private int bucket = -1;
    private long aboveBucket;

    /** Selects the top {@code k} of the values to come; {@code k} >= 1. */
    public TopK(long k) {
        if (k < 1) {
            throw new IllegalArgumentException("k must be at least 1, got " + k);
        }
        this.k = k;
    }

    /** First pass: counts the high bits of |values[0..length)|. */
    public void countHigh(float[] values, int length) {
        long[] h = highCounts();
        for (int i = 0; i < length; i++) {
            h[(Float.floatToRawIntBits(values[i]) & 0x7FFFFFFF) >>> 15]++;
        }
    }

    /** Adds another block's first-pass counts (from a parallel worker). */
    public void addHigh(TopK other) {
        long[] h = highCounts();
        long[] o = other.highCounts();
        for (int i = 0; i < HIGH_BUCKETS; i++) {
            h[i] += o[i];
        }
    }

    private long[] highCounts() {
        if (high == null) {
            high = new long[HIGH_BUCKETS];
        }
        return high;
    }

    private long[] lowCounts() {
        if (low == null) {
            low = new long[LOW_BUCKETS];
        }
        return low;
    }

    /** Ends the first pass: picks the bucket holding the k-th largest. */
    public void chooseBucket() {
        long[] high = highCounts();
        long seen = 0;
        for (int b = HIGH_BUCKETS - 1; b >= 0; b--) {
            if (seen + high[b] >= k) {
                bucket = b;
                aboveBucket = seen;
                return;
            }
            seen += high[b];
        }
        bucket = 0; // fewer than k values in all: keep everything
        aboveBucket = seen - high[0];
    }

    public int bucket() {
        return bucket;
    }

    /**
     * Second pass: counts the low bits of the |values| inside the chosen bucket. Few values fall in it, so a
     * vector compare skips the rest and only hits are counted one by one.
     */
    public void countLow(float[] values, int length, int chosenBucket) {
        long[] l = lowCounts();
        int[] spill = new int[IS.length()];
        int i = 0;
        for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
            countLow(values, i, chosenBucket, l, spill, FS.maskAll(true));
        }
        if (i < length) {
            countLow(values, i, chosenBucket, l, spill, FS.indexInRange(i, length));
        }
    }

    private static void countLow(float[] values, int i, int chosenBucket, long[] l, int[] spill, VectorMask<Float> lanes) {
        IntVector bits = FloatVector.fromArray(FS, values, i, lanes).reinterpretAsInts().and(0x7FFFFFFF);
        long set = bits.lanewise(VectorOperators.LSHR, 15).compare(VectorOperators.EQ, chosenBucket)
                .and(lanes.cast(IS)).toLong();
        if (set != 0) {
            bits.intoArray(spill, 0);
            for (; set != 0; set &= set - 1) {
                l[spill[Long.numberOfTrailingZeros(set)] & 0x7FFF]++;
            }
        }
    }

    public void addLow(TopK other) {
        long[] l = lowCounts();
        long[] o = other.lowCounts();
        for (int i = 0; i < LOW_BUCKETS; i++) {
            l[i] += o[i];
        }
    }

    /** Ends the second pass: the smallest magnitude that is kept. */
    public float threshold() {
        long[] low = lowCounts();
        long seen = aboveBucket;
        for (int b = LOW_BUCKETS - 1; b >= 0; b--) {
            seen += low[b];
            if (seen >= k) {
                return Float.intBitsToFloat((bucket << 15) | b);
            }
        }
        return 0f;
    }
}
