package io.modelmerge.engine.kernel;

import java.util.Arrays;
import java.util.List;
import java.util.OptionalDouble;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The exact top-k magnitude threshold in one full pass: a histogram of a sample of the values (the high 16
 * bits of |v|) brackets the k-th largest between two buckets with a wide safety margin; the full pass then
 * counts the values above the bracket with vector compares and collects only the few inside it, and a radix
 * select over those gives the exact threshold. If the sample misled (the k-th lies outside the bracket), the
 * caller falls back to {@link TopK}'s two full passes; the result is exact either way.
 */
public final class MagnitudeBracket {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> IS = IntVector.SPECIES_PREFERRED;
    private static final int BUCKETS = 1 << 16;

    private final int low;
    private final int high;

    private MagnitudeBracket(int low, int high) {
        this.low = low;
        this.high = high;
    }

    /** A histogram of the high bits of |v| over a sample. */
    public static final class Sample {
        final long[] counts = new long[BUCKETS];

        public void add(float[] values, int length) {
            for (int i = 0; i < length; i++) {
                counts[(Float.floatToRawIntBits(values[i]) & 0x7FFFFFFF) >>> 15]++;
            }
        }
    }

    /**
     * Brackets the k-th largest of {@code total} values from samples of them: the bucket range that holds it
     * with a margin of six standard deviations plus 1% of the sample on each side.
     */
    public static MagnitudeBracket of(List<Sample> samples, long k, long total) {
        long[] counts = new long[BUCKETS];
        long size = 0;
        for (Sample s : samples) {
            for (int b = 0; b < BUCKETS; b++) {
                counts[b] += s.counts[b];
            }
        }
        for (long c : counts) {
            size += c;
        }
        double q = k / (double) total;
        double expected = q * size;
        double margin = 6 * Math.sqrt(size * q * (1 - q)) + 0.01 * size + 8;
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
            above += counts[b];
            if (above >= expected + margin) {
                low = b;
                break;
            }
        }
        return new MagnitudeBracket(low, Math.max(low, high));
    }

    /** One worker's share of the full pass: how many |v| lie above the bracket, and those inside it. */
    public final class Candidates {
        long above;
        float[] inside = new float[1024];
        int count;

        public void add(float[] values, int length) {
            int i = 0;
            for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
                IntVector bits = FloatVector.fromArray(FS, values, i).reinterpretAsInts().and(0x7FFFFFFF);
                IntVector bucket = bits.lanewise(VectorOperators.LSHR, 15);
                above += bucket.compare(VectorOperators.GT, high).trueCount();
                VectorMask<Integer> in = bucket.compare(VectorOperators.GE, low).and(bucket.compare(VectorOperators.LE, high));
                if (in.anyTrue()) {
                    for (int lane = 0; lane < IS.length(); lane++) {
                        if (in.laneIsSet(lane)) {
                            keep(Float.intBitsToFloat(bits.lane(lane)));
                        }
                    }
                }
            }
            for (; i < length; i++) {
                float v = Math.abs(values[i]);
                int bucket = Float.floatToRawIntBits(v) >>> 15;
                if (bucket > high) {
                    above++;
                } else if (bucket >= low) {
                    keep(v);
                }
            }
        }

        private void keep(float v) {
            if (count == inside.length) {
                inside = Arrays.copyOf(inside, inside.length * 2);
            }
            inside[count++] = v;
        }
    }

    public Candidates candidates() {
        return new Candidates();
    }

    /** The exact threshold from the full pass, or empty when the k-th lies outside the bracket. */
    public OptionalDouble threshold(List<Candidates> parts, long k) {
        long above = 0;
        int inside = 0;
        for (Candidates c : parts) {
            above += c.above;
            inside += c.count;
        }
        long rank = k - above;
        if (rank < 1 || rank > inside) {
            return OptionalDouble.empty();
        }
        float[] values = new float[inside];
        int at = 0;
        for (Candidates c : parts) {
            System.arraycopy(c.inside, 0, values, at, c.count);
            at += c.count;
        }
        TopK select = new TopK(rank);
        select.countHigh(values, inside);
        select.chooseBucket();
        select.countLow(values, inside, select.bucket());
        return OptionalDouble.of(select.threshold());
    }
}
