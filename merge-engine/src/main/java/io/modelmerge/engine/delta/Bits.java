package io.modelmerge.engine.delta;

/**
 * Bits packed 8 per byte, least significant bit first (element i is bit i % 8 of byte i / 8), as numpy's
 * {@code packbits(bitorder="little")}: the sign bits of a BitDelta and the bitmaps of sparse deltas.
 */
public final class Bits {
    private Bits() {
    }

    /** Bytes that hold {@code n} bits. */
    public static long bytesFor(long n) {
        return (n + 7) / 8;
    }

    /** Sets bit {@code i} of {@code packed} to {@code value}. */
    public static void set(byte[] packed, int i, boolean value) {
        int mask = 1 << (i & 7);
        packed[i >>> 3] = (byte) (value ? packed[i >>> 3] | mask : packed[i >>> 3] & ~mask);
    }

    public static boolean get(byte[] packed, int i) {
        return (packed[i >>> 3] >>> (i & 7) & 1) != 0;
    }
}
