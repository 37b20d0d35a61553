package io.modelmerge.engine.delta;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Bits packed 8 per byte, least significant bit first (element i is bit i % 8 of byte i / 8), as numpy's
 * {@code packbits(bitorder="little")}: the sign bits of a BitDelta and the bitmaps of sparse deltas. The extraction
 * kernels write them a vector of lanes at a time; readers read them here.
 */
public final class Bits {
    private Bits() {
    }

    /** Bytes that hold {@code n} bits. */
    public static long bytesFor(long n) {
        return (n + 7) / 8;
    }

    /** Bit {@code i} of {@code packed}. */
    public static boolean get(MemorySegment packed, long i) {
        return (packed.get(ValueLayout.JAVA_BYTE, i >>> 3) >>> (i & 7) & 1) != 0;
    }
}
