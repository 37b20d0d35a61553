package io.modelmerge.engine.kernel;

import io.modelmerge.storage.safetensors.DType;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/** The loops of delta extraction on the Vector API. */
public final class DeltaKernels {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Double> DS = DoubleVector.SPECIES_PREFERRED;
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
            boolean bf16 = dtype == DType.BF16;
            for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
                FloatVector base = FloatVector.fromArray(FS, b, i);
                FloatVector tuned = FloatVector.fromArray(FS, f, i);
                FloatVector delta = tuned.sub(base);
                delta.intoArray(d, i);
                IntVector rebuilt = base.add(delta).reinterpretAsInts();
                IntVector target = tuned.reinterpretAsInts();
                if (bf16) {
                    rebuilt = roundBf16(rebuilt);
                    target = roundBf16(target);
                }
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

    /** Round to nearest even at bit 16, as Floats narrows to BF16 (NaN aside: a NaN simply counts as a miss). */
    private static IntVector roundBf16(IntVector bits) {
        IntVector lsb = bits.lanewise(VectorOperators.LSHR, 16).and(1);
        return bits.add(lsb.add(0x7FFF)).and(0xFFFF0000);
    }

    /** Sets bits [i, i + lanes) of {@code bits} (cleared beforehand) from a mask's lanes; i is a multiple of 8. */
    private static void put(byte[] bits, int i, long lanes, int count) {
        for (int k = 0; k < count; k += 8) {
            bits[(i + k) >>> 3] = (byte) (lanes >>> k);
        }
    }

    /**
     * DARE over one chunk whose first element is element {@code offset} of the tensor: stored[i] = d[i]·scale where
     * the seeded mask keeps element offset + i, else 0, and that bit set in {@code bits} (cleared beforehand); the
     * kept values also go, in index order, to the front of {@code values} (at least length + 16 long). Returns how
     * many were kept.
     */
    public static int dare(float[] d, int length, long offset, int seed, int threshold24, float scale, float[] stored,
                           byte[] bits, float[] values) {
        int kept = 0;
        int i = 0;
        for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
            VectorMask<Float> keep = RandomMask.keepLanes(seed, offset + i, threshold24);
            FloatVector scaled = FloatVector.fromArray(FS, d, i).mul(scale);
            FloatVector.zero(FS).blend(scaled, keep).intoArray(stored, i);
            scaled.compress(keep).intoArray(values, kept);
            put(bits, i, keep.toLong(), FS.length());
            kept += keep.trueCount();
        }
        for (; i < length; i++) {
            boolean keep = RandomMask.keeps(seed, offset + i, threshold24);
            stored[i] = keep ? d[i] * scale : 0f;
            if (keep) {
                bits[i >>> 3] |= (byte) (1 << (i & 7));
                values[kept++] = stored[i];
            }
        }
        return kept;
    }

    /**
     * Magnitude selection over one chunk: entries with |d| above {@code threshold} are kept, and those equal to it
     * in index order while {@code tiesLeft[0]} lasts (it is counted down). stored, bits and values as {@link #dare}.
     */
    public static int magnitude(float[] d, int length, float threshold, long[] tiesLeft, float[] stored, byte[] bits,
                                float[] values) {
        int kept = 0;
        int i = 0;
        for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
            FloatVector v = FloatVector.fromArray(FS, d, i);
            FloatVector magnitude = v.abs();
            VectorMask<Float> keep = magnitude.compare(VectorOperators.GT, threshold);
            VectorMask<Float> tied = magnitude.compare(VectorOperators.EQ, threshold);
            if (tied.anyTrue() && tiesLeft[0] > 0) {
                long lanes = keep.toLong();
                for (long t = tied.toLong(); t != 0 && tiesLeft[0] > 0; t &= t - 1) {
                    lanes |= t & -t;
                    tiesLeft[0]--;
                }
                keep = VectorMask.fromLong(FS, lanes);
            }
            FloatVector.zero(FS).blend(v, keep).intoArray(stored, i);
            v.compress(keep).intoArray(values, kept);
            put(bits, i, keep.toLong(), FS.length());
            kept += keep.trueCount();
        }
        for (; i < length; i++) {
            float magnitude = Math.abs(d[i]);
            boolean keep = magnitude > threshold || magnitude == threshold && tiesLeft[0]-- > 0;
            stored[i] = keep ? d[i] : 0f;
            if (keep) {
                bits[i >>> 3] |= (byte) (1 << (i & 7));
                values[kept++] = d[i];
            }
        }
        return kept;
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
     * Runs of 1,024 elements are summed in F32 lanes, each run's total added in double.
     */
    public static void errors(float[] b, float[] f, float[] d, float[] stored, int length, DType dtype, double[] sums) {
        if (dtype == DType.F16) {
            errors(b, f, d, stored, 0, length, dtype, sums);
            return;
        }
        boolean bf16 = dtype == DType.BF16;
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
                FloatVector t = (bf16 ? roundBf16(tBits) : tBits).reinterpretAsFloats();
                FloatVector r = (bf16 ? roundBf16(rBits) : rBits).reinterpretAsFloats();
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
            double t = Floats.round(f[i], dtype);
            double r = Floats.round(b[i] + stored[i], dtype);
            sums[0] += t * t;
            sums[1] += (r - t) * (r - t);
            sums[2] += (double) d[i] * d[i];
            sums[3] += ((double) stored[i] - d[i]) * ((double) stored[i] - d[i]);
        }
    }
}
