package io.modelmerge.engine.kernel;

import java.util.List;
import java.util.Optional;

/**
 * The exact top-k magnitude threshold in one full pass: a histogram of a sample of the values (the high 16
 * bits of |v|) brackets the k-th largest between two buckets with a wide safety margin; the full pass then
 * counts the values above the bracket with vector compares and collects only the few inside it, and a radix
 * select over those gives the exact threshold. If the sample misled (the k-th lies outside the bracket), the
 * caller falls back to {@link TopK}'s two full passes; the result is exact either way.
 */
public final class MagnitudeBracket {
    private static final int BUCKETS = 1 << 16;

    private final int low;
    private final int high;
    /** The fraction of the sample in the bracket's lowest bucket or above it. */
    private final double atOrAboveLow;

    private MagnitudeBracket(int low, int high, double atOrAboveLow) {
        this.low = low;
        this.high = high;
        this.atOrAboveLow = atOrAboveLow;
    }

    /** A histogram of the high bits of |v| over a sample. */
    public static final class Sample {
        final long[] counts = new long[BUCKETS];

        /** Empties it, to sample other values. */
        public void clear() {
            java.util.Arrays.fill(counts, 0L);
        }

        public void add(float[] values, int length) {
            for (int i = 0; i < length; i++) {
                counts[(Float.floatToRawIntBits(values[i]) & 0x7FFFFFFF) >>> 15]++;
            }
        }
    }

    /**
     * Brackets the k-th largest of {@code total} values from samples of them: the bucket range that holds it
     * with a margin of six standard deviations plus 1% of the sample on each side, or no margin at all when
     * the sample is every value ({@code complete}).
     */
    public static MagnitudeBracket of(List<Sample> samples, long k, long total, boolean complete) {
        return of(samples, k, total, complete, 0.01);
    }

    /**
     * As {@link #of(List, long, long, boolean)}, with a margin of six standard deviations plus {@code slack} of
     * the sample: a sample spread evenly over the values needs less slack than one of whole blocks.
     */
    public static MagnitudeBracket of(List<Sample> samples, long k, long total, boolean complete, double slack) {
        Sample[] parts = samples.toArray(Sample[]::new);
        long size = 0;
        for (Sample s : parts) {
            for (long c : s.counts) {
                size += c;
            }
        }
        double q = k / (double) total;
        double expected = q * size;
        double margin = complete ? 0 : 6 * Math.sqrt(size * q * (1 - q)) + slack * size + 8;
        int high = BUCKETS - 1;
        int low = 0;
        long above = 0;
        boolean highSet = expected - margin < 0;
        for (int b = BUCKETS - 1; b >= 0; b--) {
            // 'above' counts sampled values in buckets > b
            if (!highSet && above > expected - margin) {
                high = Math.min(BUCKETS - 1, b + 1);
                highSet = true;
            }
            for (Sample s : parts) {
                above += s.counts[b];
            }
            if (above >= expected + margin) {
                low = b;
                break;
            }
        }
        if (!highSet) {
            high = low; // one bucket took the count across the whole band: it holds the k-th
        }
        return new MagnitudeBracket(low, Math.max(low, high), size == 0 ? 1 : Math.min(1, above / (double) size));
    }

    /** The smallest |v| of the bracket's lowest bucket: where the bracket holds, the k-th largest is at least this. */
    public float lowest() {
        return Float.intBitsToFloat(low << 15);
    }

    /** How many of {@code total} values the sample says are at or above {@link #lowest()}. */
    public long estimateAtOrAboveLowest(long total) {
        return (long) Math.ceil(atOrAboveLow * total);
    }

    /** Widest bracket, in buckets, whose low bits are histogrammed (16 × 32768 counts = 4 MiB). */
    static final int MAX_WIDTH = 16;

    @Override
    public String toString() {
        return "buckets [" + low + ", " + high + "]";
    }

    /** Whether the full pass can settle the threshold; a wider bracket goes straight to the exact passes. */
    public boolean usable() {
        return width() <= MAX_WIDTH;
    }

    /** How many high-bit buckets the bracket spans; the full pass holds 32 Ki counts for each. */
    public int width() {
        return high - low + 1;
    }

    /** One worker's share of the full pass: how many |v| lie above the bracket, and a histogram of those inside. */
    public final class Candidates {
        long above;
        final long[] counts = new long[(high - low + 1) << 15];
        /** A value counts at its bits − (low << 15). */
        private final ValueTally tally = new ValueTally(counts, low << 15);

        public void add(float[] values, int length) {
            above += tally.count(values, length, low, high);
        }

        /** The counts, every held one added. */
        long[] counts() {
            tally.flush();
            return counts;
        }
    }

    public Candidates candidates() {
        return new Candidates();
    }

    /**
     * A threshold, how many values lie at or above it (more than k where values tie with the threshold), and how
     * many equal it.
     */
    public record Threshold(float value, long atOrAbove, long tied) {
    }

    /** The exact threshold from the full pass, or empty when the k-th lies outside the bracket. */
    public Optional<Threshold> threshold(List<Candidates> parts, long k) {
        long above = 0;
        for (Candidates c : parts) {
            above += c.above;
        }
        long seen = above;
        List<long[]> counts = parts.stream().map(Candidates::counts).toList();
        int size = (high - low + 1) << 15;
        if (seen >= k) {
            return Optional.empty(); // the k-th lies above the bracket
        }
        for (int index = size - 1; index >= 0; index--) {
            long tied = 0;
            for (long[] c : counts) {
                tied += c[index];
            }
            seen += tied;
            if (seen >= k) {
                return Optional.of(new Threshold(Float.intBitsToFloat((low << 15) + index), seen, tied));
            }
        }
        return Optional.empty(); // the k-th lies below the bracket
    }
}
