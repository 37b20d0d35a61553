package io.modelmerge.engine.kernel;

import io.modelmerge.storage.safetensors.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/** The loops of delta extraction on the Vector API. */
public final class DeltaKernels {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Double> DS = DoubleVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> IS = IntVector.SPECIES_PREFERRED;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Floats as many as DS has doubles. */
    private static final VectorSpecies<Float> HALF = VectorSpecies.of(float.class,
            VectorShape.forBitSize(DS.vectorBitSize() / 2));

    private DeltaKernels() {
    }

    /**
     * d[i] = f[i] − b[i] for i < length, and the elements where b + d, rounded to {@code dtype}, is not f rounded to
     * it (bit for bit): their indices go to {@code misses}, their count is returned. F32 and BF16 run a vector at
     * a time, F16 element by element.
     */
    public static int delta(float[] b, float[] f, float[] d, int length, DType dtype, int[] misses) {
        int count = 0;
        int i = 0;
        if (dtype == DType.F32 || dtype == DType.BF16) {
            Rounding rounding = Rounding.of(dtype);
            int lowest = rounding.lowest();
            int half = rounding.half();
            int top = rounding.top();
            for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
                FloatVector base = FloatVector.fromArray(FS, b, i);
                FloatVector tuned = FloatVector.fromArray(FS, f, i);
                FloatVector delta = tuned.sub(base);
                delta.intoArray(d, i);
                IntVector sum = base.add(delta).reinterpretAsInts();
                IntVector tunedBits = tuned.reinterpretAsInts();
                IntVector rebuilt = sum.add(sum.lanewise(VectorOperators.LSHR, 16).and(lowest).add(half)).and(top);
                IntVector target = tunedBits.add(tunedBits.lanewise(VectorOperators.LSHR, 16).and(lowest).add(half))
                        .and(top);
                VectorMask<Integer> missed = rebuilt.compare(VectorOperators.NE, target);
                if (missed.anyTrue()) {
                    for (long bits = missed.toLong(); bits != 0; bits &= bits - 1) {
                        misses[count++] = i + Long.numberOfTrailingZeros(bits);
                    }
                }
            }
        }
        for (; i < length; i++) {
            d[i] = f[i] - b[i];
            if (Float.floatToRawIntBits(Floats.round(b[i] + d[i], dtype))
                    != Float.floatToRawIntBits(Floats.round(f[i], dtype))) {
                misses[count++] = i;
            }
        }
        return count;
    }

    /** d[i] = f[i] − b[i] for i < length, a vector at a time (C2 leaves the plain loop scalar). */
    public static void difference(float[] f, float[] b, float[] d, int length) {
        int i = 0;
        for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
            FloatVector.fromArray(FS, f, i).sub(FloatVector.fromArray(FS, b, i)).intoArray(d, i);
        }
        for (; i < length; i++) {
            d[i] = f[i] - b[i];
        }
    }

    /**
     * F32 bits rounded as a dtype rounds them, a vector at a time: for BF16 to the nearest even at bit 16 as Floats
     * narrows (add 0x7FFF plus the kept part's lowest bit, then truncate; NaN aside: a NaN simply counts as a
     * miss), for F32 unchanged (lowest 0, half 0, top −1). The same instructions either way: choosing between a
     * rounded and an unrounded vector inside a loop made C2 box them, and the sparse kernel ran 12 times slower
     * (4.2 against 0.35 ns an element, measured), depending on which dtypes and rules it had been profiled with.
     * Each loop writes the rounding out on its vectors, {@code x + ((x >>> 16) & lowest) + half) & top}, rather
     * than calling a method with them: no vector crosses a call in the kernels.
     */
    private record Rounding(int lowest, int half, int top) {
        static Rounding of(DType dtype) {
            return dtype == DType.BF16 ? new Rounding(1, 0x7FFF, 0xFFFF0000) : new Rounding(0, 0, -1);
        }
    }

    /** Sets bits [i, i + lanes) of {@code bits} (cleared beforehand) from a mask's lanes; i is a multiple of 8. */
    private static void put(byte[] bits, int i, long lanes, int count) {
        for (int k = 0; k < count; k += 8) {
            bits[(i + k) >>> 3] = (byte) (lanes >>> k);
        }
    }

    /** Which entries of a sparse delta are kept. */
    public sealed interface Keep {
        /** DARE: the survivors of the seeded mask ({@link RandomMask}), rescaled. */
        record Random(int seed, int threshold24, float scale) implements Keep {
        }

        /**
         * Magnitude: every |Δ| above {@code threshold}, and those equal to it in index order while
         * {@code tiesLeft[0]} lasts (it is counted down; {@code Long.MAX_VALUE} keeps them all).
         */
        record Largest(float threshold, long[] tiesLeft) implements Keep {
        }
    }

    /**
     * A sparse delta over one chunk whose first element is element {@code offset} of the tensor, in one pass over
     * base and fine-tune: Δ = f − b, the entries {@code keep} keeps set in {@code bits} (cleared beforehand) and
     * their Δ̂ (Δ, rescaled for DARE) in index order at the front of {@code values} (at least length + 16 long).
     * The reconstruction errors are added to {@code sums} as {@link #errors} adds them, with
     * Δ̂ stored for the kept and 0 for the rest. Returns how many were kept.
     */
    public static int sparse(float[] b, float[] f, int length, long offset, Keep keep, DType dtype, byte[] bits,
                             float[] values, double[] sums) {
        Rule rule = new Rule(keep);
        Rounding rounding = Rounding.of(dtype);
        int lowest = rounding.lowest();
        int half = rounding.half();
        int top = rounding.top();
        int kept = 0;
        int i = 0;
        int bound = dtype == DType.F16 ? 0 : FS.loopBound(length); // F16 rounds one element at a time
        while (i < bound) {
            FloatVector tt = FloatVector.zero(FS);
            FloatVector rt = FloatVector.zero(FS);
            FloatVector dd = FloatVector.zero(FS);
            FloatVector sd = FloatVector.zero(FS);
            for (int end = Math.min(bound, i + 1024); i < end; i += FS.length()) {
                FloatVector base = FloatVector.fromArray(FS, b, i);
                FloatVector tuned = FloatVector.fromArray(FS, f, i);
                FloatVector delta = tuned.sub(base);
                long laneBits = rule.random != null
                        ? RandomMask.keepBits(rule.random.seed(), offset + i, rule.random.threshold24(), rule.draws)
                        : rule.largest(delta.abs().compare(VectorOperators.GT, rule.threshold).toLong(),
                                delta.abs().compare(VectorOperators.EQ, rule.threshold).toLong());
                VectorMask<Float> lanes = VectorMask.fromLong(FS, laneBits);
                FloatVector scaled = delta.mul(rule.scale);
                scaled.compress(lanes).intoArray(values, kept);
                put(bits, i, laneBits, FS.length());
                kept += Long.bitCount(laneBits);
                FloatVector s = FloatVector.zero(FS).blend(scaled, lanes);
                IntVector tBits = tuned.reinterpretAsInts();
                IntVector rBits = base.add(s).reinterpretAsInts();
                FloatVector t = tBits.add(tBits.lanewise(VectorOperators.LSHR, 16).and(lowest).add(half)).and(top)
                        .reinterpretAsFloats();
                FloatVector r = rBits.add(rBits.lanewise(VectorOperators.LSHR, 16).and(lowest).add(half)).and(top)
                        .reinterpretAsFloats();
                FloatVector e = r.sub(t);
                FloatVector g = s.sub(delta);
                tt = t.fma(t, tt);
                rt = e.fma(e, rt);
                dd = delta.fma(delta, dd);
                sd = g.fma(g, sd);
            }
            sums[0] += tt.reduceLanes(VectorOperators.ADD);
            sums[1] += rt.reduceLanes(VectorOperators.ADD);
            sums[2] += dd.reduceLanes(VectorOperators.ADD);
            sums[3] += sd.reduceLanes(VectorOperators.ADD);
        }
        for (; i < length; i++) {
            kept = sparseOne(b[i], f[i], i, offset, rule, dtype, bits, values, kept, sums);
        }
        rule.end();
        return kept;
    }

    /**
     * {@link #sparse} over a BF16 base and fine-tune read straight from their stored bytes (little-endian), for a
     * BF16 fine-tune: the same bits kept, values and sums, without widening both into float arrays first and
     * reading those back (on DARE's extraction of 2 × 1 GB that was 13% of the CPU time, measured). Its loop is
     * {@link #sparse}'s but for the two loads: one loop choosing between them would box the vectors (see
     * {@link Rounding}).
     */
    public static int sparseBf16(MemorySegment b, MemorySegment f, int length, long offset, Keep keep, byte[] bits,
                                 float[] values, double[] sums) {
        Rule rule = new Rule(keep);
        Rounding rounding = Rounding.of(DType.BF16);
        int lowest = rounding.lowest();
        int half = rounding.half();
        int top = rounding.top();
        int kept = 0;
        int i = 0;
        int bound = FS.loopBound(length);
        while (i < bound) {
            FloatVector tt = FloatVector.zero(FS);
            FloatVector rt = FloatVector.zero(FS);
            FloatVector dd = FloatVector.zero(FS);
            FloatVector sd = FloatVector.zero(FS);
            for (int end = Math.min(bound, i + 1024); i < end; i += FS.length()) {
                // widened as Floats widens BF16: each 16-bit value in an int lane, shifted to the high half
                FloatVector base = ((IntVector) ShortVector.fromMemorySegment(Floats.SS, b, 2L * i,
                        ByteOrder.LITTLE_ENDIAN).castShape(IS, 0)).lanewise(VectorOperators.LSHL, 16)
                        .reinterpretAsFloats();
                FloatVector tuned = ((IntVector) ShortVector.fromMemorySegment(Floats.SS, f, 2L * i,
                        ByteOrder.LITTLE_ENDIAN).castShape(IS, 0)).lanewise(VectorOperators.LSHL, 16)
                        .reinterpretAsFloats();
                FloatVector delta = tuned.sub(base);
                long laneBits = rule.random != null
                        ? RandomMask.keepBits(rule.random.seed(), offset + i, rule.random.threshold24(), rule.draws)
                        : rule.largest(delta.abs().compare(VectorOperators.GT, rule.threshold).toLong(),
                                delta.abs().compare(VectorOperators.EQ, rule.threshold).toLong());
                VectorMask<Float> lanes = VectorMask.fromLong(FS, laneBits);
                FloatVector scaled = delta.mul(rule.scale);
                scaled.compress(lanes).intoArray(values, kept);
                put(bits, i, laneBits, FS.length());
                kept += Long.bitCount(laneBits);
                FloatVector s = FloatVector.zero(FS).blend(scaled, lanes);
                // BF16 values read as stored are their own rounding: t is the fine-tune itself
                IntVector rBits = base.add(s).reinterpretAsInts();
                FloatVector r = rBits.add(rBits.lanewise(VectorOperators.LSHR, 16).and(lowest).add(half)).and(top)
                        .reinterpretAsFloats();
                FloatVector e = r.sub(tuned);
                FloatVector g = s.sub(delta);
                tt = tuned.fma(tuned, tt);
                rt = e.fma(e, rt);
                dd = delta.fma(delta, dd);
                sd = g.fma(g, sd);
            }
            sums[0] += tt.reduceLanes(VectorOperators.ADD);
            sums[1] += rt.reduceLanes(VectorOperators.ADD);
            sums[2] += dd.reduceLanes(VectorOperators.ADD);
            sums[3] += sd.reduceLanes(VectorOperators.ADD);
        }
        for (; i < length; i++) {
            kept = sparseOne(bf16(b, i), bf16(f, i), i, offset, rule, DType.BF16, bits, values, kept, sums);
        }
        rule.end();
        return kept;
    }

    /**
     * A {@link Keep}'s fields, taken apart before a loop (a call on the rule inside it, seeing both kinds, boxes),
     * and its ties, counted down here and written back by {@link #end}. The loops compare the vectors themselves
     * and hand the rule the lanes as longs: a vector passed to or from a method C2 leaves out of line is boxed,
     * and however small the method, C2 sometimes does (see the README's {@code kernel}).
     */
    private static final class Rule {
        final Keep.Random random;
        final float scale;
        final float threshold;
        private final long[] tiesHolder;
        private long tiesLeft;
        /** {@link RandomMask#keepBits}' draws. */
        final int[] draws = RandomMask.drawBuffer();

        Rule(Keep keep) {
            random = keep instanceof Keep.Random r ? r : null;
            scale = random != null ? random.scale() : 1f;
            threshold = keep instanceof Keep.Largest largest ? largest.threshold() : 0f;
            tiesHolder = keep instanceof Keep.Largest largest ? largest.tiesLeft() : null;
            tiesLeft = tiesHolder != null ? tiesHolder[0] : 0;
        }

        /**
         * The lanes kept of those {@code above} the threshold and those {@code tied} with it: all above, and the
         * first tied ones while the ties last.
         */
        long largest(long above, long tied) {
            int taken = (int) Math.min(Long.bitCount(tied), tiesLeft);
            tiesLeft -= taken;
            return above | Long.expand((1L << taken) - 1, tied); // at most 16 lanes: the shift never wraps
        }

        /** Whether the rule keeps Δ at element {@code index}, one element at a time. */
        boolean keeps(float delta, long index) {
            if (random != null) {
                return RandomMask.keeps(random.seed(), index, random.threshold24());
            }
            float magnitude = Math.abs(delta);
            if (magnitude == threshold && tiesLeft > 0) {
                tiesLeft--;
                return true;
            }
            return magnitude > threshold;
        }

        /** Writes the ties left back to the rule's counter. */
        void end() {
            if (tiesHolder != null) {
                tiesHolder[0] = tiesLeft;
            }
        }
    }

    /** {@link #sparse}'s work on element i of a chunk at {@code offset}, one element at a time; returns kept. */
    private static int sparseOne(float b, float f, int i, long offset, Rule rule, DType dtype, byte[] bits,
                                 float[] values, int kept, double[] sums) {
        float delta = f - b;
        float s = 0f;
        if (rule.keeps(delta, offset + i)) {
            s = delta * rule.scale;
            bits[i >>> 3] |= (byte) (1 << (i & 7));
            values[kept++] = s;
        }
        addErrors(b, f, delta, s, dtype, sums);
        return kept;
    }

    /** Element i of little-endian BF16 bytes, widened. */
    private static float bf16(MemorySegment bytes, int i) {
        return Float.intBitsToFloat(bytes.get(U16, 2L * i) << 16);
    }

    /**
     * Magnitude selection among values already held: of {@code values[from, from + count)}, those with |v| above
     * {@code threshold}, and those equal to it in order while {@code tiesLeft[0]} lasts (counted down), get their
     * bit set in {@code flags} (bit i for values[from + i], cleared beforehand) and go in order to the front of
     * {@code kept} (at least count + 16 long). Returns how many were kept.
     */
    public static int keepLargest(float[] values, int from, int count, float threshold, long[] tiesLeft, long[] flags,
                                  float[] kept) {
        Rule rule = new Rule(new Keep.Largest(threshold, tiesLeft));
        int n = 0;
        int i = 0;
        for (int bound = FS.loopBound(count); i < bound; i += FS.length()) {
            FloatVector v = FloatVector.fromArray(FS, values, from + i);
            long laneBits = rule.largest(v.abs().compare(VectorOperators.GT, threshold).toLong(),
                    v.abs().compare(VectorOperators.EQ, threshold).toLong());
            v.compress(VectorMask.fromLong(FS, laneBits)).intoArray(kept, n);
            n += Long.bitCount(laneBits);
            flags[i >>> 6] |= laneBits << (i & 63); // a vector's lanes (at most 16) divide 64: never split over words
        }
        for (; i < count; i++) {
            if (rule.keeps(values[from + i], 0)) {
                flags[i >>> 6] |= 1L << (i & 63);
                kept[n++] = values[from + i];
            }
        }
        rule.end();
        return n;
    }

    /**
     * BitDelta over elements [from, to): bit i of {@code bits} set where d[i]'s sign bit is clear (+0 and
     * positives), and stored[i] = ±alpha by that bit. Bits of whole bytes are written, the rest or-ed in: bits
     * below {@code from} in its byte must be set beforehand, those from {@code from} on cleared.
     */
    public static void signs(float[] d, int from, int to, float alpha, byte[] bits, float[] stored) {
        int i = from;
        if (from % 8 == 0) {
            FloatVector positive = FloatVector.broadcast(FS, alpha);
            FloatVector negative = FloatVector.broadcast(FS, -alpha);
            for (int bound = from + FS.loopBound(to - from); i < bound; i += FS.length()) {
                VectorMask<Float> set = FloatVector.fromArray(FS, d, i).reinterpretAsInts().compare(VectorOperators.GE, 0)
                        .cast(FS);
                negative.blend(positive, set).intoArray(stored, i);
                put(bits, i, set.toLong(), FS.length());
            }
        }
        for (; i < to; i++) {
            boolean set = Float.floatToRawIntBits(d[i]) >= 0;
            stored[i] = set ? alpha : -alpha;
            if (set) {
                bits[i >>> 3] |= (byte) (1 << (i & 7));
            }
        }
    }

    /** Lanes of {@link #absSum}'s running sums. */
    public static final int SUM_LANES = DS.length();

    /**
     * Adds |d[i]| for i in [from, to) to {@code lanes} (SUM_LANES long), element from + j to lane j mod SUM_LANES,
     * in double: a sum over several calls whose ranges each start at a multiple of SUM_LANES from where the sum
     * began has the same bits however the ranges were cut. {@link #total} gives the sum.
     */
    public static void absSum(float[] d, int from, int to, double[] lanes) {
        DoubleVector sum = DoubleVector.fromArray(DS, lanes, 0);
        int i = from;
        for (int bound = from + DS.loopBound(to - from); i < bound; i += DS.length()) {
            sum = sum.add(FloatVector.fromArray(HALF, d, i).abs().convertShape(VectorOperators.F2D, DS, 0));
        }
        sum.intoArray(lanes, 0);
        for (; i < to; i++) {
            lanes[(i - from) % DS.length()] += Math.abs(d[i]);
        }
    }

    /** The sum of {@link #absSum}'s lanes, in lane order. */
    public static double total(double[] lanes) {
        double sum = 0;
        for (double lane : lanes) {
            sum += lane;
        }
        return sum;
    }

    /**
     * Adds to {@code sums} the reconstruction's squared errors over one chunk: [0] Σ t², [1] Σ (r − t)², [2] Σ d²,
     * [3] Σ (s − d)², with t the fine-tune f and r the base b plus the stored s, both rounded to {@code dtype}.
     * Runs of 1,024 elements are summed in F32 lanes, each run's total added in double. The total is
     * reduceLanes': its order may change with the moment the JIT compiles the loop, and so may the sums' last bits
     * (adding the lanes in order, as {@link Lanes} does, measured 25% slower on DARE's extraction).
     */
    public static void errors(float[] b, float[] f, float[] d, float[] stored, int length, DType dtype, double[] sums) {
        if (dtype == DType.F16) {
            errors(b, f, d, stored, 0, length, dtype, sums);
            return;
        }
        Rounding rounding = Rounding.of(dtype);
        int lowest = rounding.lowest();
        int half = rounding.half();
        int top = rounding.top();
        int i = 0;
        int bound = FS.loopBound(length);
        while (i < bound) {
            FloatVector tt = FloatVector.zero(FS);
            FloatVector rt = FloatVector.zero(FS);
            FloatVector dd = FloatVector.zero(FS);
            FloatVector sd = FloatVector.zero(FS);
            for (int end = Math.min(bound, i + 1024); i < end; i += FS.length()) {
                FloatVector s = FloatVector.fromArray(FS, stored, i);
                FloatVector delta = FloatVector.fromArray(FS, d, i);
                IntVector tBits = FloatVector.fromArray(FS, f, i).reinterpretAsInts();
                IntVector rBits = FloatVector.fromArray(FS, b, i).add(s).reinterpretAsInts();
                FloatVector t = tBits.add(tBits.lanewise(VectorOperators.LSHR, 16).and(lowest).add(half)).and(top)
                        .reinterpretAsFloats();
                FloatVector r = rBits.add(rBits.lanewise(VectorOperators.LSHR, 16).and(lowest).add(half)).and(top)
                        .reinterpretAsFloats();
                FloatVector e = r.sub(t);
                FloatVector g = s.sub(delta);
                tt = t.fma(t, tt);
                rt = e.fma(e, rt);
                dd = delta.fma(delta, dd);
                sd = g.fma(g, sd);
            }
            sums[0] += tt.reduceLanes(VectorOperators.ADD);
            sums[1] += rt.reduceLanes(VectorOperators.ADD);
            sums[2] += dd.reduceLanes(VectorOperators.ADD);
            sums[3] += sd.reduceLanes(VectorOperators.ADD);
        }
        errors(b, f, d, stored, i, length, dtype, sums);
    }

    /** {@link #errors} over elements [from, to), one at a time in double. */
    private static void errors(float[] b, float[] f, float[] d, float[] stored, int from, int to, DType dtype,
                               double[] sums) {
        for (int i = from; i < to; i++) {
            addErrors(b[i], f[i], d[i], stored[i], dtype, sums);
        }
    }

    /** One element's terms of {@link #errors}, in double: base b, fine-tune f, Δ d and stored Δ̂ s. */
    private static void addErrors(float b, float f, float d, float s, DType dtype, double[] sums) {
        double t = Floats.round(f, dtype);
        double r = Floats.round(b + s, dtype);
        sums[0] += t * t;
        sums[1] += (r - t) * (r - t);
        sums[2] += (double) d * d;
        sums[3] += ((double) s - d) * ((double) s - d);
    }
}
