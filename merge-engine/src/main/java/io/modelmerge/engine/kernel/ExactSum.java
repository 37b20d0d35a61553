package io.modelmerge.engine.kernel;

import java.math.BigDecimal;
import java.math.BigInteger;

/**
 * A sum of doubles kept exactly, as a fixed-point integer over the whole double range, so its value does not
 * depend on the order the terms came in: statistics that workers gather over a tensor in whatever split the
 * thread count and the memory budget give add up to the same bits. The value is the exact sum rounded once to
 * the nearest double.
 */
public final class ExactSum {
    /** Bit 0 of the fixed-point integer weighs 2^-1074, the smallest subnormal double. */
    private static final int SCALE = 1074;
    /** 32-bit limbs covering 2^-1074 .. 2^1024, with room above for carries. */
    private static final int LIMBS = 68;
    /** Terms added before carries are propagated: each adds under 2^33 to a limb, and a long holds 2^63. */
    private static final int CARRY_EVERY = 1 << 28;

    private final long[] limbs = new long[LIMBS];
    private int pending;
    /** The sum of the infinite and NaN terms, which have no fixed-point form. */
    private double special;

    public void add(double x) {
        long bits = Double.doubleToRawLongBits(x);
        int exponent = (int) (bits >>> 52) & 0x7FF;
        if (exponent == 0x7FF) {
            special += x;
            return;
        }
        long mantissa = bits & 0xFFFFFFFFFFFFFL;
        if (exponent != 0) {
            mantissa |= 1L << 52;
        }
        if (mantissa == 0) {
            return;
        }
        // x = mantissa * 2^(position - SCALE), subnormals at position 0
        int position = Math.max(exponent - 1, 0);
        int limb = position >>> 5;
        int shift = position & 31;
        long low = (mantissa & 0xFFFFFFFFL) << shift;   // up to 64 bits, read unsigned
        long high = (mantissa >>> 32) << shift;         // up to 53 bits
        long l0 = low & 0xFFFFFFFFL;
        long l1 = (low >>> 32) + (high & 0xFFFFFFFFL);
        long l2 = high >>> 32;
        if (bits < 0) {
            limbs[limb] -= l0;
            limbs[limb + 1] -= l1;
            limbs[limb + 2] -= l2;
        } else {
            limbs[limb] += l0;
            limbs[limb + 1] += l1;
            limbs[limb + 2] += l2;
        }
        if (++pending == CARRY_EVERY) {
            carry();
        }
    }

    /** Adds what {@code other} holds; {@code other} is unchanged. */
    public void add(ExactSum other) {
        other.carry();
        carry();
        for (int i = 0; i < LIMBS; i++) {
            limbs[i] += other.limbs[i];
        }
        special += other.special;
        pending = 1;
    }

    /** The exact sum, rounded to the nearest double (ties to even). */
    public double value() {
        if (special != 0 || Double.isNaN(special)) {
            return special;
        }
        carry();
        BigInteger total = BigInteger.ZERO;
        for (int i = LIMBS - 1; i >= 0; i--) {
            total = total.shiftLeft(32).add(BigInteger.valueOf(limbs[i]));
        }
        int length = total.abs().bitLength();
        if (length <= 62) {
            return length == 0 ? 0.0 : scaled(total.longValueExact(), -SCALE);
        }
        // Keep 62 bits and a sticky bit for everything below, so the one rounding to 53 bits is still correct.
        int drop = length - 62;
        BigInteger kept = total.abs().shiftRight(drop);
        boolean sticky = total.abs().getLowestSetBit() < drop;
        long top = kept.longValueExact() << 1 | (sticky ? 1 : 0);
        return scaled(total.signum() < 0 ? -top : top, drop - 1 - SCALE);
    }

    /** {@code integer} · 2^{@code exponent}, rounded once. */
    private static double scaled(long integer, int exponent) {
        if (exponent >= -1022 + 64 || integer == 0) {
            return Math.scalb((double) integer, exponent); // a normal result: the scaling is exact
        }
        // Near the subnormal range a conversion then a scaling would round twice; a power of two divides exactly.
        return new BigDecimal(integer).divide(new BigDecimal(BigInteger.ONE.shiftLeft(-exponent))).doubleValue();
    }

    private void carry() {
        for (int i = 0; i < LIMBS - 1; i++) {
            long c = limbs[i] >> 32;
            limbs[i] -= c << 32;
            limbs[i + 1] += c;
        }
        pending = 0;
    }
}
