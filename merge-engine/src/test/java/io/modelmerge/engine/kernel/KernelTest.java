package io.modelmerge.engine.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.storage.safetensors.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class KernelTest {

    /** Round to nearest BF16, ties to even, computed from the two neighbouring BF16 values. */
    private static float nearestBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        float down = Float.intBitsToFloat(bits & 0xFFFF0000);
        float up = Float.intBitsToFloat((bits & 0xFFFF0000) + 0x10000);
        double dDown = Math.abs((double) value - down);
        double dUp = Math.abs((double) up - value);
        if (dDown < dUp) {
            return down;
        }
        if (dUp < dDown) {
            return up;
        }
        return ((Float.floatToRawIntBits(down) >>> 16) & 1) == 0 ? down : up;
    }

    @Test
    void bf16NarrowingRoundsToNearestEvenAndWideningIsExact() {
        Random random = new Random(5);
        int n = 10_001;
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(8) - 4));
        }
        values[0] = Float.intBitsToFloat(0x3F808000); // exactly halfway, even below: rounds down
        values[1] = Float.intBitsToFloat(0x3F818000); // exactly halfway, odd below: rounds up
        values[2] = Float.NaN;
        values[3] = Float.NEGATIVE_INFINITY;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment stored = arena.allocate(2L * n);
            Floats.narrow(values, n, stored, DType.BF16, 0);
            float[] back = new float[n];
            Floats.widen(stored, DType.BF16, 0, back, n);
            for (int i = 3; i < n; i++) {
                assertEquals(nearestBf16(values[i]), back[i], "value " + values[i]);
            }
            assertEquals(Float.intBitsToFloat(0x3F800000), back[0]);
            assertEquals(Float.intBitsToFloat(0x3F820000), back[1]);
            assertEquals(true, Float.isNaN(back[2]));
            float[] offset = new float[5];
            Floats.widen(stored, DType.BF16, 100, offset, 5);
            assertEquals(Arrays.toString(Arrays.copyOfRange(back, 100, 105)), Arrays.toString(offset));
        }
    }

    @Test
    void f16AndF32RoundTrip() {
        float[] values = {0f, 1f, -2.5f, 65504f, 1e-5f, 3.14159f};
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment f16 = arena.allocate(2L * values.length);
            Floats.narrow(values, values.length, f16, DType.F16, 0);
            float[] back = new float[values.length];
            Floats.widen(f16, DType.F16, 0, back, values.length);
            for (int i = 0; i < values.length; i++) {
                assertEquals(Float.float16ToFloat(Float.floatToFloat16(values[i])), back[i]);
            }
            MemorySegment f32 = arena.allocate(4L * values.length);
            Floats.narrow(values, values.length, f32, DType.F32, 0);
            Floats.widen(f32, DType.F32, 0, back, values.length);
            assertEquals(Arrays.toString(values), Arrays.toString(back));
        }
    }

    @Test
    void topKThresholdIsTheKthLargestMagnitude() {
        Random random = new Random(3);
        TopK.Reused reused = new TopK.Reused(); // one for every trial, as a worker keeps it
        for (int trial = 0; trial < 20; trial++) {
            int n = 1 + random.nextInt(20_000);
            float[] values = new float[n];
            for (int i = 0; i < n; i++) {
                values[i] = (float) (random.nextGaussian() * Math.exp(random.nextGaussian() * 3));
            }
            long k = 1 + random.nextInt(n);
            long other = 1 + random.nextInt(n);
            // two ranks known up front, one given after the first round; each round split over two workers
            TopK known = new TopK(k, other);
            TopK later = new TopK();
            int half = n / 2;
            for (TopK selection : List.of(known, later)) {
                for (int round = 0; round < 2; round++) {
                    TopK.Counts first = selection.counts();
                    TopK.Counts second = selection.counts();
                    first.add(Arrays.copyOfRange(values, 0, half), half);
                    second.add(Arrays.copyOfRange(values, half, n), n - half);
                    selection.end(List.of(second, first));
                    if (round == 0 && selection == later) {
                        assertEquals(n, later.count());
                        later.rank(k);
                    }
                }
            }
            float[] magnitudes = new float[n];
            for (int i = 0; i < n; i++) {
                magnitudes[i] = Math.abs(values[i]);
            }
            Arrays.sort(magnitudes);
            assertEquals(magnitudes[(int) (n - k)], known.threshold(0), "n=" + n + " k=" + k);
            assertEquals(magnitudes[(int) (n - other)], known.threshold(1), "n=" + n + " k=" + other);
            assertEquals(magnitudes[(int) (n - k)], later.threshold(), "n=" + n + " k=" + k);
            float t = later.threshold();
            assertEquals(java.util.stream.IntStream.range(0, n).filter(i -> magnitudes[i] >= t).count(), later.atOrAbove(),
                    "values at or above the threshold, ties included");
            long tied = java.util.stream.IntStream.range(0, n).filter(i -> magnitudes[i] == t).count();
            assertEquals(new MagnitudeBracket.Threshold(t, later.atOrAbove(), tied), reused.kthLargest(k, values, n),
                    "n=" + n + " k=" + k);
        }
        // fewer values than k: everything is kept
        float[] few = {0.5f, -2f, 0f};
        assertEquals(new MagnitudeBracket.Threshold(0f, 3, 0), reused.kthLargest(5, few, few.length));
    }

    /**
     * Deltas of BF16 models take few values (multiples of the spacing of nearby BF16 numbers), a few of them
     * most of the time: the selections count such runs in registers (ValueTally) and the first round in
     * interleaved histograms; values of one bucket that are all different, one by one. Fed in uneven pieces,
     * so held counts carry over from one piece to the next.
     */
    @Test
    void topKAndBracketCountDeltasOfFewDistinctValuesExactly() {
        Random random = new Random(11);
        for (int trial = 0; trial < 14; trial++) {
            int n = trial < 12 ? 20_000 + random.nextInt(60_000) : 150_000;
            float[] values = new float[n];
            for (int i = 0; trial >= 12 && i < n; i++) {
                // and many values in one bucket: the tallies miss until they count one by one
                values[i] = (random.nextBoolean() ? 1 : -1) * (1f + random.nextFloat() / 512);
            }
            for (int i = 0; trial < 12 && i < n; i++) {
                float base = Float.intBitsToFloat(Float.floatToRawIntBits((float) random.nextGaussian() * 0.05f) & 0xFFFF0000);
                float tuned = Float.intBitsToFloat(Float.floatToRawIntBits(base + (float) random.nextGaussian() * 0.002f)
                        & 0xFFFF0000);
                // mostly a run of one value, now and then another (trial by trial more or less often)
                values[i] = random.nextInt(10) < trial % 4 ? tuned - base : (i / 97 % 3) * 0.0009765625f;
            }
            float[] magnitudes = new float[n];
            for (int i = 0; i < n; i++) {
                magnitudes[i] = Math.abs(values[i]);
            }
            Arrays.sort(magnitudes);
            long k = 1 + random.nextInt(n);
            float expected = magnitudes[(int) (n - k)];
            long atOrAbove = Arrays.stream(boxed(magnitudes)).filter(m -> m >= expected).count();
            long tied = Arrays.stream(boxed(magnitudes)).filter(m -> m == expected).count();

            TopK top = new TopK(k);
            while (!top.done()) {
                TopK.Counts first = top.counts();
                TopK.Counts second = top.counts();
                feedInPieces(values, 0, n / 3, first::add, random);
                feedInPieces(values, n / 3, n, second::add, random);
                top.end(List.of(first, second));
            }
            assertEquals(expected, top.threshold(), "trial " + trial + " k=" + k);
            assertEquals(atOrAbove, top.atOrAbove());
            assertEquals(tied, top.tiedAt(0));
            assertEquals(new MagnitudeBracket.Threshold(expected, atOrAbove, tied),
                    new TopK.Reused().kthLargest(k, values, n), "trial " + trial);

            MagnitudeBracket.Sample sample = new MagnitudeBracket.Sample();
            sample.add(values, n);
            MagnitudeBracket bracket = MagnitudeBracket.of(List.of(sample), k, n, true);
            MagnitudeBracket.Candidates first = bracket.candidates();
            MagnitudeBracket.Candidates second = bracket.candidates();
            feedInPieces(values, 0, n / 2, first::add, random);
            feedInPieces(values, n / 2, n, second::add, random);
            MagnitudeBracket.Threshold threshold = bracket.threshold(List.of(first, second), k).orElseThrow();
            assertEquals(new MagnitudeBracket.Threshold(expected, atOrAbove, tied), threshold, "trial " + trial);
        }
    }

    /**
     * An order-free sum (of |δ|, of the selected δ²) is the sequential double sum bit for bit, or NaN: BF16 deltas
     * (few significant bits) take
     * the vector path; values spanning many binades, subnormals with large values, NaN and infinity do not.
     */
    @Test
    void orderFreeSumsEqualTheSequentialSumOrRefuse() {
        Random random = new Random(17);
        int vectorPaths = 0;
        int squarePaths = 0;
        for (int trial = 0; trial < 400; trial++) {
            int length = 1 + random.nextInt(3000);
            float[] x = new float[length];
            float[] base = new float[length];
            int kind = trial % 5;
            for (int i = 0; i < length; i++) {
                base[i] = bf16((float) random.nextGaussian() * 0.05f);
                x[i] = switch (kind) {
                    case 0, 1 -> bf16(base[i] + (float) random.nextGaussian() * 0.002f); // a BF16 fine-tune
                    case 2 -> (float) (random.nextGaussian() * Math.pow(2, random.nextInt(60) - 30)); // wide range
                    case 3 -> i == length / 2 ? Float.MIN_VALUE * 3 : base[i] + random.nextFloat(); // a subnormal
                    default -> i == length / 3 ? (random.nextBoolean() ? Float.NaN : Float.POSITIVE_INFINITY) : x[i];
                };
            }
            float[] selector = new float[length];
            for (int i = 0; i < length; i++) {
                selector[i] = random.nextInt(4) == 0 ? Float.NaN : random.nextFloat();
            }
            double squares = OrderFreeSum.orderFreeDeltaSquareSum(x, base, 0, selector, 0.3f, length);
            double sequentialSquares = 0;
            for (int i = 0; i < length; i++) {
                if (selector[i] >= 0.3f) {
                    double d = x[i] - base[i];
                    sequentialSquares += d * d;
                }
            }
            assertEquals(sequentialSquares, OrderFreeSum.deltaSquareSum(x, base, 0, selector, 0.3f, length),
                    "squares, either way, trial " + trial);
            if (kind <= 1 && !Double.isNaN(squares)) {
                squarePaths++; // squares span twice the binades: a weight near 0 can make a row's sum ordered
            }
            if (!Double.isNaN(squares)) {
                assertEquals(Double.doubleToRawLongBits(sequentialSquares), Double.doubleToRawLongBits(squares),
                        "squares, trial " + trial);
            }
            float[] delta = new float[length];
            OrderFreeSum.AbsSum all = OrderFreeSum.deltaAbsSum(x, base, 0, length, delta);
            double sequential = 0;
            double kept = 0;
            for (int i = 0; i < length; i++) {
                assertEquals(x[i] - base[i], delta[i], 0f);
                sequential += Math.abs(x[i] - base[i]);
                if (i % 3 == 0) {
                    kept += Math.abs(delta[i]);
                } else {
                    delta[i] = 0f;
                }
            }
            assertEquals(sequential, all.value(), "either way, trial " + trial);
            assertEquals(kept, all.ofSubset(delta, length), "kept, either way, trial " + trial);
            if (kind <= 1) {
                assertTrue(all.orderFree(), "a BF16 delta's sum is order-free");
            }
            if (kind == 4) {
                assertTrue(!all.orderFree(), "NaN or infinity is summed one by one");
            }
            if (all.orderFree()) {
                vectorPaths++;
                assertEquals(Double.doubleToRawLongBits(sequential), Double.doubleToRawLongBits(all.value()),
                        "trial " + trial);
                assertEquals(Double.doubleToRawLongBits(kept), Double.doubleToRawLongBits(all.ofSubset(delta, length)),
                        "trial " + trial);
            }
        }
        assertTrue(vectorPaths >= 160, "vector paths taken: " + vectorPaths);
        assertTrue(squarePaths >= 120, "of 160 BF16 deltas, sums of squares taken as vectors: " + squarePaths);
    }

    private static float bf16(float value) {
        return Float.intBitsToFloat(Float.floatToRawIntBits(value) & 0xFFFF0000);
    }

    private static Float[] boxed(float[] values) {
        Float[] boxed = new Float[values.length];
        for (int i = 0; i < values.length; i++) {
            boxed[i] = values[i];
        }
        return boxed;
    }

    /** Gives values[from, to) to {@code add} in pieces of random lengths, each copied to the start of an array. */
    private static void feedInPieces(float[] values, int from, int to, java.util.function.ObjIntConsumer<float[]> add,
                                     Random random) {
        for (int at = from; at < to; ) {
            int length = Math.min(to - at, 1 + random.nextInt(random.nextBoolean() ? 5_000 : 40_000));
            add.accept(Arrays.copyOfRange(values, at, at + length), length);
            at += length;
        }
    }

    @Test
    void exactSumIsTheRoundedExactSumInAnyOrderAndSplit() {
        Random random = new Random(8);
        for (int trial = 0; trial < 50; trial++) {
            int n = 1 + random.nextInt(3000);
            double[] terms = new double[n];
            BigDecimal exact = BigDecimal.ZERO;
            for (int i = 0; i < n; i++) {
                // Magnitudes from subnormal to 1e300, both signs, and cancellations that plain double sums lose.
                double x = random.nextGaussian() * Math.pow(10, random.nextInt(40) - 20);
                terms[i] = switch (random.nextInt(10)) {
                    case 0 -> Double.MIN_VALUE * random.nextInt(1000);
                    case 1 -> random.nextBoolean() ? 1e300 : -1e300;
                    case 2 -> i > 0 ? -terms[i - 1] : x;
                    default -> x;
                };
                exact = exact.add(new BigDecimal(terms[i]));
            }
            ExactSum inOrder = new ExactSum();
            for (double t : terms) {
                inOrder.add(t);
            }
            ExactSum shuffled = new ExactSum();
            ExactSum otherHalf = new ExactSum();
            List<Double> order = new ArrayList<>();
            for (double t : terms) {
                order.add(t);
            }
            Collections.shuffle(order, random);
            for (int i = 0; i < n; i++) {
                (i % 2 == 0 ? shuffled : otherHalf).add(order.get(i));
            }
            shuffled.add(otherHalf);
            assertEquals(exact.doubleValue(), inOrder.value(), "trial " + trial);
            assertEquals(Double.doubleToRawLongBits(inOrder.value()), Double.doubleToRawLongBits(shuffled.value()));
        }
        ExactSum special = new ExactSum();
        special.add(1);
        special.add(Double.POSITIVE_INFINITY);
        assertEquals(Double.POSITIVE_INFINITY, special.value());
        special.add(Double.NEGATIVE_INFINITY);
        assertTrue(Double.isNaN(special.value()));
        assertEquals(0.0, new ExactSum().value());
    }

    @Test
    void vectorExpAndTanhFollowStrictMathToAFewUlps() {
        Random random = new Random(4);
        int n = 200_003; // a tail that is not a whole vector
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (random.nextBoolean() ? random.nextGaussian() * 30 : random.nextGaussian() * 0.5);
        }
        float[] exp = new float[n];
        float[] tanh = new float[n];
        VectorMath.exp(x, exp, n);
        VectorMath.tanh(x, tanh, n);
        for (int i = 0; i < n; i++) {
            float e = (float) StrictMath.exp(x[i]);
            float t = (float) StrictMath.tanh(x[i]);
            assertTrue(exp[i] == e || Math.abs(exp[i] - e) <= 3 * Math.ulp(e) || e < Float.MIN_NORMAL && exp[i] < Float.MIN_NORMAL,
                    "exp(" + x[i] + ") = " + exp[i] + ", StrictMath " + e);
            assertTrue(tanh[i] == t || Math.abs(tanh[i] - t) <= 3 * Math.ulp(t), "tanh(" + x[i] + ") = " + tanh[i]
                    + ", StrictMath " + t);
        }
        float[] edges = {100f, -100f, Float.NaN, 88.7f, 0f};
        float[] out = new float[edges.length];
        VectorMath.exp(edges, out, edges.length);
        assertEquals(Float.POSITIVE_INFINITY, out[0]);
        assertEquals(0f, out[1]);
        assertTrue(Float.isNaN(out[2]));
        assertEquals((float) StrictMath.exp(88.7f), out[3], 3 * Math.ulp(out[3]));
        assertEquals(1f, out[4]);
        VectorMath.tanh(edges, out, edges.length);
        assertEquals(1f, out[0]);
        assertEquals(-1f, out[1]);
        assertTrue(Float.isNaN(out[2]));
        assertEquals(0f, out[4]);
    }
}
