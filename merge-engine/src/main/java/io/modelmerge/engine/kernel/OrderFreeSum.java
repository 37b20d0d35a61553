package io.modelmerge.engine.kernel;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Sums of |v| (or v²) in double, a vector at a time, that equal the sum taken one element after another from 0,
 * bit for bit. Each |v| is an integer times 2^q, q the exponent of its lowest set bit; when every |v| is a
 * multiple of 2^q and the total is below 2^(53 + q) (v²: 2^2q and 2^(53 + 2q)), every partial sum in any order is
 * an exact double, so all orders give the exact total. Deltas of BF16 or F16 weights have few significant bits
 * and pass easily; where the check fails (a row spanning too many binades, or a NaN or infinity), the sum is
 * taken one element at a time instead. Either way the caller gets the sequential sum's bits.
 */
public final class OrderFreeSum {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Double> DS = DoubleVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> IS = IntVector.SPECIES_PREFERRED;

    private OrderFreeSum() {
    }

    /**
     * A sum of |v| as adding the terms one after another from 0 gives it, and whether it was taken a vector at a
     * time (order-free).
     */
    public record AbsSum(double value, boolean orderFree) {
        /**
         * The sum of {@code values[0, length)}, some of this sum's terms with the rest zeroed (a selection of them),
         * as adding them one after another from 0 gives it: a subset of order-free terms is order-free.
         */
        public double ofSubset(float[] values, int length) {
            return orderFree ? vectorAbsSum(values, length) : sequentialAbsSum(values, length);
        }
    }

    /**
     * Writes δ = x − base for elements [from, from + length) into {@code delta[0, length)} and returns Σ|δ|: a
     * vector at a time where order-free (see the class), else one by one.
     */
    public static AbsSum deltaAbsSum(float[] x, float[] base, int from, int length, float[] delta) {
        DoubleVector low = DoubleVector.zero(DS);
        DoubleVector high = DoubleVector.zero(DS);
        IntVector lowestBit = IntVector.broadcast(IS, Integer.MAX_VALUE);
        int i = 0;
        for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
            FloatVector d = FloatVector.fromArray(FS, x, from + i).sub(FloatVector.fromArray(FS, base, from + i));
            d.intoArray(delta, i);
            FloatVector a = d.abs();
            low = low.add(a.convertShape(VectorOperators.F2D, DS, 0));
            high = high.add(a.convertShape(VectorOperators.F2D, DS, 1));
            IntVector bits = a.reinterpretAsInts();
            // lowestBitExponent a vector at a time, written out: no vector crosses a call in the kernels
            lowestBit = lowestBit.min(bits.or(0x800000).lanewise(VectorOperators.TRAILING_ZEROS_COUNT)
                    .add(bits.lanewise(VectorOperators.LSHR, 23).max(1)).sub(150)
                    .blend(Integer.MAX_VALUE, bits.compare(VectorOperators.EQ, 0)));
        }
        double tail = 0;
        int tailLowest = Integer.MAX_VALUE;
        for (; i < length; i++) {
            float d = x[from + i] - base[from + i];
            delta[i] = d;
            float a = Math.abs(d);
            tail += a;
            tailLowest = Math.min(tailLowest, lowestBitExponent(a));
        }
        int q = Math.min(lowestBit.reduceLanes(VectorOperators.MIN), tailLowest);
        double sum = exactOrNaN(low.add(high).reduceLanes(VectorOperators.ADD) + tail, q, 53L + q);
        if (!Double.isNaN(sum)) {
            return new AbsSum(sum, true);
        }
        return new AbsSum(sequentialAbsSum(delta, length), false);
    }

    private static double sequentialAbsSum(float[] values, int length) {
        double sum = 0;
        for (int i = 0; i < length; i++) {
            sum += Math.abs(values[i]);
        }
        return sum;
    }

    /** Σ|v| over {@code values[0, length)} in any order, a vector at a time: for order-free terms only. */
    private static double vectorAbsSum(float[] values, int length) {
        DoubleVector low = DoubleVector.zero(DS);
        DoubleVector high = DoubleVector.zero(DS);
        int i = 0;
        for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
            FloatVector a = FloatVector.fromArray(FS, values, i).abs();
            low = low.add(a.convertShape(VectorOperators.F2D, DS, 0));
            high = high.add(a.convertShape(VectorOperators.F2D, DS, 1));
        }
        double sum = low.add(high).reduceLanes(VectorOperators.ADD);
        for (; i < length; i++) {
            sum += Math.abs(values[i]);
        }
        return sum;
    }

    /**
     * Σ δ² in double (δ = x − base in F32, squared exactly in double) over the elements i of [0, length) whose
     * {@code selector[i] >= threshold}, element i being x's and base's {@code from + i}, as adding them one after
     * another from 0 gives it: a vector at a time where order-free (δ² is a multiple of 2^2q where δ is one of
     * 2^q), else one by one.
     */
    public static double deltaSquareSum(float[] x, float[] base, int from, float[] selector, float threshold, int length) {
        double sum = orderFreeDeltaSquareSum(x, base, from, selector, threshold, length);
        if (Double.isNaN(sum)) {
            sum = 0;
            for (int i = 0; i < length; i++) {
                if (selector[i] >= threshold) {
                    double d = x[from + i] - base[from + i];
                    sum += d * d;
                }
            }
        }
        return sum;
    }

    /** {@link #deltaSquareSum} a vector at a time where it is order-free, else NaN. */
    static double orderFreeDeltaSquareSum(float[] x, float[] base, int from, float[] selector, float threshold,
                                          int length) {
        DoubleVector low = DoubleVector.zero(DS);
        DoubleVector high = DoubleVector.zero(DS);
        IntVector lowestBit = IntVector.broadcast(IS, Integer.MAX_VALUE);
        int i = 0;
        for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
            VectorMask<Float> selected = FloatVector.fromArray(FS, selector, i).compare(VectorOperators.GE, threshold);
            FloatVector d = FloatVector.fromArray(FS, x, from + i).sub(FloatVector.fromArray(FS, base, from + i))
                    .blend(0f, selected.not());
            DoubleVector dLow = (DoubleVector) d.convertShape(VectorOperators.F2D, DS, 0);
            DoubleVector dHigh = (DoubleVector) d.convertShape(VectorOperators.F2D, DS, 1);
            low = low.add(dLow.mul(dLow));
            high = high.add(dHigh.mul(dHigh));
            IntVector bits = d.abs().reinterpretAsInts();
            // lowestBitExponent a vector at a time, written out: no vector crosses a call in the kernels
            lowestBit = lowestBit.min(bits.or(0x800000).lanewise(VectorOperators.TRAILING_ZEROS_COUNT)
                    .add(bits.lanewise(VectorOperators.LSHR, 23).max(1)).sub(150)
                    .blend(Integer.MAX_VALUE, bits.compare(VectorOperators.EQ, 0)));
        }
        double tail = 0;
        int tailLowest = Integer.MAX_VALUE;
        for (; i < length; i++) {
            if (selector[i] >= threshold) {
                float d = x[from + i] - base[from + i];
                tail += (double) d * d;
                tailLowest = Math.min(tailLowest, lowestBitExponent(d));
            }
        }
        int q = Math.min(lowestBit.reduceLanes(VectorOperators.MIN), tailLowest);
        return exactOrNaN(low.add(high).reduceLanes(VectorOperators.ADD) + tail, q, 53L + 2L * q);
    }

    /**
     * {@code sum} when it is below 2^{@code bound} (or every term was zero: {@code q} MAX_VALUE), else NaN; a NaN
     * or an infinity among the terms fails too (its sum's exponent is past any bound).
     */
    private static double exactOrNaN(double sum, int q, long bound) {
        return q == Integer.MAX_VALUE || Math.getExponent(sum) < bound ? sum : Double.NaN;
    }

    /**
     * The exponent of the lowest set bit of |value|: its biased exponent (1 for a subnormal) − 150 plus the
     * trailing zeros of its bits with the hidden bit's place set (a normal's hidden bit, and below any subnormal's
     * lowest bit); MAX_VALUE for a zero. The loops write the same a vector at a time (checked equal to the
     * mantissa-and-hidden-bit form for all 2³¹ magnitudes).
     */
    private static int lowestBitExponent(float value) {
        int bits = Float.floatToRawIntBits(value) & 0x7FFFFFFF;
        if (bits == 0) {
            return Integer.MAX_VALUE;
        }
        return Integer.numberOfTrailingZeros(bits | 0x800000) + Math.max(bits >>> 23, 1) - 150;
    }
}
