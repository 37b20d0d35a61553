package io.modelmerge.engine.kernel;

import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Moves tensor data between its stored dtype (F32, BF16, F16, little-endian) and F32 working buffers: widening
 * is exact; narrowing rounds to nearest, ties to even, as PyTorch does. The one place that knows the bit
 * layouts; merge methods only ever see floats.
 */
public final class Floats {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> IS = IntVector.SPECIES_PREFERRED;
    /** As many 16-bit lanes as FS has floats: BF16 values are widened from them. */
    static final VectorSpecies<Short> SS = VectorSpecies.of(short.class, jdk.incubator.vector.VectorShape.forBitSize(FS.vectorBitSize() / 2));

    private Floats() {
    }

    /** Whether the kernels read and write this dtype. */
    public static boolean supports(DType dtype) {
        return dtype == DType.F32 || dtype == DType.BF16 || dtype == DType.F16;
    }

    /** The whole of {@code tensor}, widened to F32. */
    public static float[] widen(Tensor tensor) {
        float[] values = new float[Math.toIntExact(tensor.info().elementCount())];
        widen(tensor.data(), tensor.dtype(), 0, values, values.length);
        return values;
    }

    /** Reads {@code length} elements from element {@code from} of {@code src} (of {@code dtype}) into {@code dst}. */
    public static void widen(MemorySegment src, DType dtype, long from, float[] dst, int length) {
        switch (dtype) {
            case F32 -> MemorySegment.copy(src, F32, from * 4, dst, 0, length);
            case BF16 -> widenBf16(src, from * 2, dst, length);
            case F16 -> {
                long at = from * 2;
                for (int i = 0; i < length; i++) {
                    dst[i] = Float.float16ToFloat(src.get(U16, at + 2L * i));
                }
            }
            default -> throw new IllegalArgumentException("Cannot read " + dtype + " as floats");
        }
    }

    /** Whole vectors, unmasked (masked loads from a segment cost twice as much); the tail as one padded vector. */
    private static void widenBf16(MemorySegment src, long byteOffset, float[] dst, int length) {
        int tail = SS.loopBound(length);
        widenBf16(src, byteOffset, dst, 0, tail);
        if (tail < length) {
            MemorySegment padded = MemorySegment.ofArray(new short[SS.length()]);
            MemorySegment.copy(src, byteOffset + 2L * tail, padded, 0, 2L * (length - tail));
            float[] widened = new float[SS.length()];
            widenBf16(padded, 0, widened, 0, SS.length());
            System.arraycopy(widened, 0, dst, tail, length - tail);
        }
    }

    /** Over elements [from, to), whole vectors. */
    private static void widenBf16(MemorySegment src, long byteOffset, float[] dst, int from, int to) {
        for (int i = from; i < to; i += SS.length()) {
            ((IntVector) ShortVector.fromMemorySegment(SS, src, byteOffset + 2L * i, ByteOrder.LITTLE_ENDIAN)
                    .castShape(IS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, i);
        }
    }

    /** Writes {@code length} floats of {@code src} as {@code dtype} at element {@code to} of {@code dst}. */
    public static void narrow(float[] src, int length, MemorySegment dst, DType dtype, long to) {
        switch (dtype) {
            case F32 -> MemorySegment.copy(src, 0, dst, F32, to * 4, length);
            case BF16 -> narrowBf16(src, length, dst, to * 2);
            case F16 -> {
                long at = to * 2;
                for (int i = 0; i < length; i++) {
                    dst.set(U16, at + 2L * i, Float.floatToFloat16(src[i]));
                }
            }
            default -> throw new IllegalArgumentException("Cannot write floats as " + dtype);
        }
    }

    /**
     * Round to nearest even (add 0x7FFF plus the kept part's lowest bit, then truncate); NaN stays a quiet NaN.
     * Whole vectors unmasked, the tail as one padded vector.
     */
    private static void narrowBf16(float[] src, int length, MemorySegment dst, long byteOffset) {
        int tail = FS.loopBound(length);
        narrowBf16(src, dst, byteOffset, 0, tail);
        if (tail < length) {
            MemorySegment narrowed = MemorySegment.ofArray(new short[FS.length()]);
            narrowBf16(Tail.padded(src, tail, length), narrowed, 0, 0, FS.length());
            MemorySegment.copy(narrowed, 0, dst, byteOffset + 2L * tail, 2L * (length - tail));
        }
    }

    /** Over elements [from, to), whole vectors. */
    private static void narrowBf16(float[] src, MemorySegment dst, long byteOffset, int from, int to) {
        for (int i = from; i < to; i += FS.length()) {
            FloatVector f = FloatVector.fromArray(FS, src, i);
            IntVector bits = f.reinterpretAsInts();
            IntVector lsb = bits.lanewise(VectorOperators.LSHR, 16).and(1);
            IntVector rounded = bits.add(lsb.add(0x7FFF)).lanewise(VectorOperators.LSHR, 16);
            rounded = rounded.blend(0x7FC0, f.test(VectorOperators.IS_NAN).cast(IS));
            ShortVector s = (ShortVector) rounded.convertShape(VectorOperators.I2S, SS, 0);
            s.intoMemorySegment(dst, byteOffset + 2L * i, ByteOrder.LITTLE_ENDIAN);
        }
    }

    /** {@code value} rounded to the nearest {@code dtype} value (ties to even), as narrowing then widening it does. */
    public static float round(float value, DType dtype) {
        return switch (dtype) {
            case F32 -> value;
            case BF16 -> {
                if (Float.isNaN(value)) {
                    yield value;
                }
                int bits = Float.floatToRawIntBits(value);
                yield Float.intBitsToFloat(((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16) << 16);
            }
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(value));
            default -> throw new IllegalArgumentException("Cannot round floats to " + dtype);
        };
    }

    /** Rounds {@code values[0..length)} to {@code dtype} in place (a conversion mergekit makes; not a hot path). */
    public static void round(float[] values, int length, DType dtype) {
        for (int i = 0; i < length; i++) {
            values[i] = round(values[i], dtype);
        }
    }

    /**
     * The index of the first of {@code values[0..length)} that is NaN or infinite, or that would become infinite
     * when narrowed to {@code dtype} (BF16 and F16 round their largest floats up to infinity); -1 when all are
     * finite there.
     */
    public static int firstNonFinite(float[] values, int length, DType dtype) {
        float limit = largestFinite(dtype);
        int tail = FS.loopBound(length);
        int first = firstBeyond(values, limit, tail);
        if (first >= 0 || tail == length) {
            return first;
        }
        first = firstBeyond(Tail.padded(values, tail, length), limit, FS.length()); // zeros pad it: never beyond
        return first < 0 ? -1 : tail + first;
    }

    /** The first of values[0, to) (whole vectors) beyond {@code limit} in magnitude, or NaN; -1 if none. */
    private static int firstBeyond(float[] values, float limit, int to) {
        for (int i = 0; i < to; i += FS.length()) {
            VectorMask<Float> beyond = FloatVector.fromArray(FS, values, i).abs()
                    .compare(VectorOperators.LE, limit).not(); // NaN compares false, so it is beyond
            if (beyond.anyTrue()) {
                return i + beyond.firstTrue();
            }
        }
        return -1;
    }

    /** The largest float that stays finite once narrowed to {@code dtype}. */
    static float largestFinite(DType dtype) {
        return switch (dtype) {
            case F32 -> Float.MAX_VALUE;
            case BF16 -> Float.intBitsToFloat(0x7F7F7FFF); // 0x7F7F8000 ties up to infinity (0x7F7F is odd)
            case F16 -> Math.nextDown(65520f);              // 65520 ties up to infinity (65504 is odd)
            default -> throw new IllegalArgumentException("Cannot write floats as " + dtype);
        };
    }
}
