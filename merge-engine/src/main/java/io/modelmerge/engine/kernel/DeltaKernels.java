package io.modelmerge.engine.kernel;

import io.modelmerge.storage.safetensors.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** The loops of delta extraction on the Vector API. */
public final class DeltaKernels {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;

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

    /** Round to nearest even at bit 16, as Floats narrows to BF16 (NaN aside: a NaN simply counts as a miss). */
    private static IntVector roundBf16(IntVector bits) {
        IntVector lsb = bits.lanewise(VectorOperators.LSHR, 16).and(1);
        return bits.add(lsb.add(0x7FFF)).and(0xFFFF0000);
    }
}
