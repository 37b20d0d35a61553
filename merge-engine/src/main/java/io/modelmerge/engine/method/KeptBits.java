package io.modelmerge.engine.method;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * Which elements of one tensor a pass kept, a bit each by the element's index in the tensor, so a later pass
 * applies the same selection without deciding it again (DELLA ranks every row to decide). Blocks record their
 * elements from any worker at once: words shared by two blocks are OR-ed atomically.
 */
final class KeptBits {
    private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);

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
        for (int i = 0; i < length; i++, e++) {
            word |= (Float.floatToRawIntBits(values[from + i]) != 0 ? 1L : 0L) << (e & 63);
            if ((e & 63) == 63 || i == length - 1) {
                if (word != 0) {
                    WORDS.getAndBitwiseOr(words, (int) (e >>> 6), word);
                }
                word = 0;
            }
        }
    }

    /**
     * Zeroes the elements of {@code values[from..from+length)} (the tensor's from {@code index}) not recorded as
     * kept; the kept ones stay as they are, bit for bit.
     */
    void keepRecorded(long index, float[] values, int from, int length) {
        long e = index;
        for (int i = 0; i < length; i++, e++) {
            int keep = -(int) ((words[(int) (e >>> 6)] >>> (e & 63)) & 1L);
            values[from + i] = Float.intBitsToFloat(Float.floatToRawIntBits(values[from + i]) & keep);
        }
    }
}
