package io.modelmerge.engine.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Counts of the exact magnitudes (|v|'s bits) that fall in a range of high-bit buckets ({@code bits >>> 15}),
 * in a {@code long[]}, magnitude {@code m} at {@code m - origin}. Magnitudes of BF16 and F16 deltas take few
 * distinct values (differences of nearby low-precision numbers are multiples of their spacing): a bucket near a
 * threshold is mostly one value, and counting its hits one by one makes each increment wait for the last store
 * to the same count. Two values are counted in vector registers instead (a compare and an add per
 * vector); a value counted one by one takes the place of the one with fewer hits since it came, whose count goes
 * to the array then, as both do at {@link #flush}. Where the hits are many values (magnitudes computed in F32,
 * such as PCB's β), most vectors would miss both: after a first stretch, a tally that misses on more than one
 * vector in eight of those with hits counts every hit one by one instead. The counts are the same either way.
 */
final class ValueTally {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> IS = IntVector.SPECIES_PREFERRED;

    private final long[] counts;
    private final int origin;
    private final int[] spill = new int[IS.length()];
    /** The values counted in {@link #firstCount} and {@link #secondCount}; -1 for none (never a magnitude's bits). */
    private int first = -1;
    private int second = -1;
    private long firstCount;
    private long secondCount;
    /** Vectors with hits, and those of them that missed both held values. */
    private long vectorsWithHits;
    private long misses;
    /** Whether every hit is counted one by one (the hits are too many values to hold). */
    private boolean oneByOne;

    ValueTally(long[] counts, int origin) {
        this.counts = counts;
        this.origin = origin;
    }

    /**
     * Counts the |values[0..length)| whose bucket lies in [{@code low}, {@code high}]; returns how many lie in a
     * bucket above {@code high}.
     */
    long count(float[] values, int length, int low, int high) {
        IntVector firstHits = IntVector.zero(IS);
        IntVector secondHits = IntVector.zero(IS);
        IntVector ones = IntVector.broadcast(IS, 1);
        long above = 0;
        int i = 0;
        for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
            IntVector bits = FloatVector.fromArray(FS, values, i).reinterpretAsInts().and(0x7FFFFFFF);
            IntVector bucket = bits.lanewise(VectorOperators.LSHR, 15);
            above += bucket.compare(VectorOperators.GT, high).trueCount();
            VectorMask<Integer> hits = bucket.compare(VectorOperators.GE, low)
                    .and(bucket.compare(VectorOperators.LE, high));
            if (!hits.anyTrue()) {
                continue;
            }
            if (oneByOne) {
                bits.intoArray(spill, 0);
                countEach(hits.toLong());
                continue;
            }
            vectorsWithHits++;
            VectorMask<Integer> isFirst = bits.compare(VectorOperators.EQ, first);
            VectorMask<Integer> isSecond = bits.compare(VectorOperators.EQ, second);
            firstHits = firstHits.add(ones.blend(0, isFirst.not()));
            secondHits = secondHits.add(ones.blend(0, isSecond.not()));
            long rest = hits.andNot(isFirst).andNot(isSecond).toLong();
            if (rest != 0) {
                firstCount += firstHits.reduceLanes(VectorOperators.ADD);
                secondCount += secondHits.reduceLanes(VectorOperators.ADD);
                firstHits = IntVector.zero(IS);
                secondHits = IntVector.zero(IS);
                bits.intoArray(spill, 0);
                miss(rest);
            }
        }
        firstCount += firstHits.reduceLanes(VectorOperators.ADD);
        secondCount += secondHits.reduceLanes(VectorOperators.ADD);
        oneByOne = vectorsWithHits >= 4096 && misses * 8 > vectorsWithHits;
        return above + countTail(values, i, length, low, high);
    }

    /** Counts values[from, length) one at a time; returns how many lie above the range. */
    private long countTail(float[] values, int from, int length, int low, int high) {
        long above = 0;
        for (int i = from; i < length; i++) {
            int bits = Float.floatToRawIntBits(values[i]) & 0x7FFFFFFF;
            int bucket = bits >>> 15;
            if (bucket > high) {
                above++;
            } else if (bucket >= low) {
                counts[bits - origin]++;
            }
        }
        return above;
    }

    /** Counts the lanes of {@link #spill} set in {@code lanes} one by one; the last takes a held value's place. */
    private void miss(long lanes) {
        misses++;
        int last = countEach(lanes);
        if (firstCount < secondCount) {
            flushFirst();
            first = last;
        } else {
            flushSecond();
            second = last;
        }
    }

    /**
     * Counts the lanes of {@link #spill} set in {@code lanes} one by one; returns the last one's value. The caller
     * stores the vector there: no vector crosses a method call in the kernels (see the README's {@code kernel}).
     */
    private int countEach(long lanes) {
        int last = -1;
        for (long rest = lanes; rest != 0; rest &= rest - 1) {
            last = spill[Long.numberOfTrailingZeros(rest)];
            counts[last - origin]++;
        }
        return last;
    }

    /** Adds the held counts to the array: call before reading it. */
    void flush() {
        flushFirst();
        flushSecond();
    }

    private void flushFirst() {
        if (first != -1) {
            counts[first - origin] += firstCount;
        }
        firstCount = 0;
    }

    private void flushSecond() {
        if (second != -1) {
            counts[second - origin] += secondCount;
        }
        secondCount = 0;
    }
}
