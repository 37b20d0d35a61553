package io.modelmerge.engine.kernel;

import java.util.Arrays;
import java.util.List;

/**
 * Magnitude thresholds over values that arrive block by block, in any order and split over workers: for each
 * rank k, the smallest |value| among the k largest. A two-level radix select on the bits of |value|
 * (non-negative floats order like their bit patterns), in two rounds over the data: the first histograms the
 * high 16 bits, the second the low 15 bits of the values in each rank's chosen bucket. O(n), never a sort. All
 * ranks share the first round's histogram. Values equal to a threshold are all kept, so ties may keep a few
 * more than k.
 *
 * <p>A round: each worker fills its own {@link #counts()} with the blocks it reads, then {@link #end} combines
 * them. The ranks may be given after the first round ({@link #rank}), when they depend on what it saw.
 */
public final class TopK {
    private static final int HIGH_BUCKETS = 1 << 16;
    private static final int LOW_BUCKETS = 1 << 15;
    /**
     * The first round's histograms per worker, filled in turn: magnitudes of BF16 deltas take few values, and
     * counting a run of one bucket in one histogram makes each increment wait for the one before.
     */
    private static final int HISTOGRAMS = 4;
    /** A run of values long enough to fill the histograms in turn. */
    private static final int LONG_RUN = 1 << 14;

    private final long[] high = new long[HIGH_BUCKETS];
    private boolean highCounted;
    private long[] ranks;
    private int[] buckets;
    private long[] aboveBucket;
    private float[] thresholds;
    private long[] atOrAbove;
    private long[] tiedAt;

    /** Selects the thresholds of {@code ranks} (each at least 1); none: they are given after the first round. */
    public TopK(long... ranks) {
        if (ranks.length > 0) {
            this.ranks = checked(ranks);
        }
    }

    private static long[] checked(long[] ranks) {
        for (long k : ranks) {
            if (k < 1) {
                throw new IllegalArgumentException("k must be at least 1, got " + k);
            }
        }
        return ranks.clone();
    }

    /** Whether the thresholds are known. */
    public boolean done() {
        return thresholds != null;
    }

    /** One worker's counts for the current round. */
    public Counts counts() {
        if (done()) {
            throw new IllegalStateException("the selection is done");
        }
        return highCounted ? new Counts(buckets.clone()) : new Counts(null);
    }

    /** Ends the current round with every worker's counts. */
    public void end(List<Counts> parts) {
        if (!highCounted) {
            for (Counts part : parts) {
                add(high, part.counts());
            }
            highCounted = true;
            if (ranks != null) {
                chooseBuckets();
            }
            return;
        }
        if (ranks == null) {
            throw new IllegalStateException("no ranks given after the first round");
        }
        long[] low = new long[ranks.length * LOW_BUCKETS];
        for (Counts part : parts) {
            add(low, part.counts());
        }
        thresholds = new float[ranks.length];
        atOrAbove = new long[ranks.length];
        tiedAt = new long[ranks.length];
        for (int r = 0; r < ranks.length; r++) {
            threshold(r, low);
        }
    }

    private static void add(long[] into, long[] counts) {
        for (int i = 0; i < into.length; i++) {
            into[i] += counts[i];
        }
    }

    /** After the first round, for a selection made without ranks: the ranks to select. */
    public void rank(long... ranks) {
        if (!highCounted || this.ranks != null) {
            throw new IllegalStateException("ranks are given once, after the first round");
        }
        this.ranks = checked(ranks);
        chooseBuckets();
    }

    /** How many values the first round saw. */
    public long count() {
        return Arrays.stream(high).sum();
    }

    private void chooseBuckets() {
        buckets = new int[ranks.length];
        aboveBucket = new long[ranks.length];
        for (int r = 0; r < ranks.length; r++) {
            long seen = 0;
            int b = HIGH_BUCKETS - 1;
            for (; b > 0 && seen + high[b] < ranks[r]; b--) {
                seen += high[b];
            }
            buckets[r] = b; // bucket 0 when fewer than k values in all: everything is kept
            aboveBucket[r] = seen;
        }
    }

    /** Rank r's threshold, and how many values lie at or above it. */
    private void threshold(int r, long[] low) {
        MagnitudeBracket.Threshold t = inBucket(low, r * LOW_BUCKETS, buckets[r], aboveBucket[r], ranks[r]);
        thresholds[r] = t.value();
        atOrAbove[r] = t.atOrAbove();
        tiedAt[r] = t.tied();
    }

    /**
     * The k-th largest of the values in high bucket {@code bucket}, above which {@code seen} values lie, from the
     * counts of its low 15 bits at {@code low[from, from + LOW_BUCKETS)}; with fewer than k values in all, 0 and
     * how many there are.
     */
    private static MagnitudeBracket.Threshold inBucket(long[] low, int from, int bucket, long seen, long k) {
        for (int b = LOW_BUCKETS - 1; b >= 0; b--) {
            seen += low[from + b];
            if (seen >= k) {
                return new MagnitudeBracket.Threshold(Float.intBitsToFloat((bucket << 15) | b), seen, low[from + b]);
            }
        }
        return new MagnitudeBracket.Threshold(0f, seen, 0);
    }

    /** The threshold of the only rank. */
    public float threshold() {
        return threshold(0);
    }

    /** The threshold of rank {@code r}, in the order the ranks were given. */
    public float threshold(int r) {
        if (!done()) {
            throw new IllegalStateException("the selection is not done");
        }
        return thresholds[r];
    }

    /** How many values lie at or above the only rank's threshold: more than k where values tie with it. */
    public long atOrAbove() {
        return atOrAbove(0);
    }

    /** How many values equal rank r's threshold (0 when fewer values than the rank were seen). */
    public long tiedAt(int r) {
        if (!done()) {
            throw new IllegalStateException("the selection is not done");
        }
        return tiedAt[r];
    }

    /** How many values lie at or above rank r's threshold: more than the rank where values tie with it. */
    public long atOrAbove(int r) {
        if (!done()) {
            throw new IllegalStateException("the selection is not done");
        }
        return atOrAbove[r];
    }

    /**
     * Counts the high bits of |values[0..length)| in {@code counts}, and, given {@code more} (the other
     * histograms), neighbours in different histograms, so increments of one bucket rarely wait on each other.
     */
    private static void countHigh(float[] values, int length, long[] counts, long[] more) {
        int i = 0;
        for (; more != null && i + HISTOGRAMS <= length; i += HISTOGRAMS) {
            counts[highBits(values[i])]++;
            more[highBits(values[i + 1])]++;
            more[HIGH_BUCKETS + highBits(values[i + 2])]++;
            more[2 * HIGH_BUCKETS + highBits(values[i + 3])]++;
        }
        for (; i < length; i++) {
            counts[highBits(values[i])]++;
        }
    }

    /** Adds the other histograms into the first. */
    private static void addHistograms(long[] counts, long[] more) {
        for (int h = 0; h < HISTOGRAMS - 1; h++) {
            for (int b = 0; b < HIGH_BUCKETS; b++) {
                counts[b] += more[h * HIGH_BUCKETS + b];
            }
        }
    }

    /**
     * The k-th largest |v| of one array, selected on one thread in histograms kept from one selection to the
     * next: a worker selecting in tensor after tensor clears 2.8 MiB instead of allocating it fresh each time
     * ({@link TopK} allocates its counts per selection and round). Fresh memory is what cost: in the delta
     * extraction's magnitude edit of 2 × 1 GB (75 tensors), allocating it took 0.6-0.75 s against 0.55-0.6 s
     * for the whole edit without (measured with the heap shrunk between runs, as a new process starts).
     */
    public static final class Reused {
        private final long[] high = new long[HIGH_BUCKETS];
        private final long[] more = new long[(HISTOGRAMS - 1) * HIGH_BUCKETS];
        private final long[] low = new long[LOW_BUCKETS];

        /**
         * The k-th largest of |values[0..count)| (k at least 1), with how many lie at or above it and how many
         * equal it; with fewer than k values, 0 and how many there are. As {@link TopK}'s two rounds give it.
         */
        public MagnitudeBracket.Threshold kthLargest(long k, float[] values, int count) {
            if (k < 1) {
                throw new IllegalArgumentException("k must be at least 1, got " + k);
            }
            Arrays.fill(high, 0);
            Arrays.fill(more, 0);
            countHigh(values, count, high, more);
            addHistograms(high, more);
            long seen = 0;
            int b = HIGH_BUCKETS - 1;
            for (; b > 0 && seen + high[b] < k; b--) {
                seen += high[b];
            }
            Arrays.fill(low, 0);
            ValueTally tally = new ValueTally(low, b << 15);
            tally.count(values, count, b, b);
            tally.flush();
            return inBucket(low, 0, b, seen, k);
        }
    }

    /** The high 16 bits of |v|: its bucket in the first round. */
    private static int highBits(float v) {
        return (Float.floatToRawIntBits(v) & 0x7FFFFFFF) >>> 15;
    }

    /** What one worker counts in one round. */
    public static final class Counts {
        /** Null in the first round; then the bucket each rank's low bits are counted in. */
        private final int[] buckets;
        private final long[] counts;
        /** In the second round, each rank's counts of the values in its bucket. */
        private final ValueTally[] tallies;
        /**
         * In the first round, the other histograms ({@link #HISTOGRAMS}), made for the first long run of values
         * (a tensor of a few rows needs none, and many such tensors would pay for clearing them).
         */
        private long[] more;

        private Counts(int[] buckets) {
            this.buckets = buckets;
            this.counts = new long[buckets == null ? HIGH_BUCKETS : buckets.length * LOW_BUCKETS];
            this.tallies = buckets == null ? null : new ValueTally[buckets.length];
            for (int r = 0; tallies != null && r < tallies.length; r++) {
                // a value in rank r's bucket counts at r * LOW_BUCKETS + its low 15 bits
                tallies[r] = new ValueTally(counts, (buckets[r] << 15) - r * LOW_BUCKETS);
            }
        }

        /** The counts, every held one added (in the first round, the histograms added into the first). */
        private long[] counts() {
            if (tallies != null) {
                for (ValueTally tally : tallies) {
                    tally.flush();
                }
                return counts;
            }
            if (more != null) {
                addHistograms(counts, more);
                more = null;
            }
            return counts;
        }

        /** Counts |values[0..length)|. */
        public void add(float[] values, int length) {
            if (buckets == null) {
                if (length >= LONG_RUN && more == null) {
                    more = new long[(HISTOGRAMS - 1) * HIGH_BUCKETS];
                }
                countHigh(values, length, counts, more);
                return;
            }
            // few values fall in a rank's bucket: a vector compare skips the rest
            for (int r = 0; r < buckets.length; r++) {
                tallies[r].count(values, length, buckets[r], buckets[r]);
            }
        }

    }
}
