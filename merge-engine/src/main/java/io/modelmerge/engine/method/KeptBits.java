package io.modelmerge.engine.method;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Which elements of one tensor a pass kept, a bit each by the element's index in the tensor, so a later pass
 * applies the same selection without deciding it again (DELLA ranks every row to decide). Blocks record their
 * elements from any worker at once: words shared by two blocks are OR-ed atomically. Elements whose index is a
 * multiple of the vector length go a vector at a time (the lanes' bits are one run of a word).
 */
final class KeptBits {
    private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = FS.length();

    private final long[] words;

    KeptBits(long elements) {
        this.words = new long[Math.toIntExact((elements + 63) >>> 6)];
    }

    /** Bytes held for a tensor of {@code elements}. */
    static long bytes(long elements) {
        return Long.BYTES * ((elements + 63) >>> 6);
    }

    /**
     * Records as kept each of {@code values[from..from+length)} (the tensor's elements from {@code index}) other
     * than +0, the value a dropped element has: a kept +0 merges as a dropped one does, a kept −0 is kept.
     */
    void recordNonzero(long index, float[] values, int from, int length) {
        long word = 0;
        long e = index;
        int i = 0;
        for (; i < length && (e % LANES != 0 || length - i < LANES); i++, e++) {
            word = recordOne(word, e, values[from + i]);
        }
        for (; i + LANES <= length; i += LANES, e += LANES) {
            long lanes = FloatVector.fromArray(FS, values, from + i).reinterpretAsInts()
                    .compare(VectorOperators.NE, 0).toLong();
            word |= lanes << (e & 63);
            if (((e + LANES) & 63) == 0) {
                flush((e >>> 6), word);
                word = 0;
            }
        }
        for (; i < length; i++, e++) {
            word = recordOne(word, e, values[from + i]);
        }
        if (word != 0) {
            flush((e - 1) >>> 6, word);
        }
    }

    /** Element e's bit added to the current word; the word is flushed and emptied when e ends it. */
    private long recordOne(long word, long e, float value) {
        long bits = word | (Float.floatToRawIntBits(value) != 0 ? 1L : 0L) << (e & 63);
        if ((e & 63) == 63) {
            flush(e >>> 6, bits);
            return 0;
        }
        return bits;
    }

    private void flush(long wordIndex, long bits) {
        if (bits != 0) {
            WORDS.getAndBitwiseOr(words, (int) wordIndex, bits);
        }
    }

    /**
     * Zeroes the elements of {@code values[from..from+length)} (the tensor's from {@code index}) not recorded as
     * kept; the kept ones stay as they are, bit for bit.
     */
    void keepRecorded(long index, float[] values, int from, int length) {
        long e = index;
        int i = 0;
        for (; i < length && (e % LANES != 0 || length - i < LANES); i++, e++) {
            keepOne(values, from + i, e);
        }
        for (; i + LANES <= length; i += LANES, e += LANES) {
            VectorMask<Float> kept = VectorMask.fromLong(FS, words[(int) (e >>> 6)] >>> (e & 63));
            FloatVector.fromArray(FS, values, from + i).blend(0f, kept.not()).intoArray(values, from + i);
        }
        for (; i < length; i++, e++) {
            keepOne(values, from + i, e);
        }
    }

    private void keepOne(float[] values, int at, long e) {
        int keep = -(int) ((words[(int) (e >>> 6)] >>> (e & 63)) & 1L);
        values[at] = Float.intBitsToFloat(Float.floatToRawIntBits(values[at]) & keep);
    }
}
