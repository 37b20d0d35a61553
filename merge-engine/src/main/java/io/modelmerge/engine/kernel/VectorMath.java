package io.modelmerge.engine.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * exp and tanh over float arrays from additions, multiplications and fused multiply-adds only, which IEEE 754
 * defines exactly: the same bits whether the Vector API runs compiled or interpreted. (Its own
 * {@code VectorOperators.EXP} and {@code TANH} call a vector math library once compiled and {@code Math}
 * before, which round differently, so a merge using them could change with JIT timing.) Both follow Cephes'
 * single-precision algorithms: about 1 ulp for exp, 2 for tanh. They take whole arrays, so the vector values
 * never cross a method call the JIT might not inline (where they would be boxed, and the loop run slowly).
 */
public final class VectorMath {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    /** 1.5 · 2^23: adding it rounds a float of magnitude below 2^22 to an integer, ties to even. */
    private static final float ROUNDER = 12582912f;
    private static final float EXP_MAX = 88.72283935546875f;
    private static final float EXP_MIN = -87.3365478515625f;
    /** From here tanh is 1 in float. */
    private static final float TANH_ONE = 9f;
    /** Below this |x| tanh is its odd polynomial. */
    private static final float TANH_SMALL = 0.625f;

    private VectorMath() {
    }

    /** out[i] = e^x[i] for i < length; +∞ above ~88.72, 0 below ~−87.34, NaN stays NaN. {@code out} may be {@code x}. */
    public static void exp(float[] x, float[] out, int length) {
        for (int i = 0; i < length; i += FS.length()) {
            VectorMask<Float> lanes = FS.indexInRange(i, length);
            FloatVector v = FloatVector.fromArray(FS, x, i, lanes);
            FloatVector clamped = v.max(EXP_MIN).min(EXP_MAX);
            FloatVector shifted = clamped.fma(LOG2E, ROUNDER);
            FloatVector k = shifted.sub(ROUNDER);
            FloatVector r = clamped.sub(k.mul(LN2_HI)).sub(k.mul(LN2_LO));
            FloatVector p = r.fma(1.9875691500e-4f, 1.3981999507e-3f);
            p = p.mul(r).add(8.3334519073e-3f);
            p = p.mul(r).add(4.1665795894e-2f);
            p = p.mul(r).add(1.6666665459e-1f);
            p = p.mul(r).add(5.0000001201e-1f);
            p = p.mul(r.mul(r)).add(r).add(1f);
            // 2^k as two factors 2^(k>>1) and 2^(k - (k>>1)), each a normal float for every k in [-126, 128]
            IntVector k1 = shifted.reinterpretAsInts().sub(Float.floatToRawIntBits(ROUNDER));
            IntVector k0 = k1.lanewise(VectorOperators.ASHR, 1);
            k1 = k1.sub(k0);
            FloatVector e = p.mul(k0.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats())
                    .mul(k1.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats());
            // NaN came through as NaN; past the ends, infinity and zero
            e.blend(Float.POSITIVE_INFINITY, v.compare(VectorOperators.GT, EXP_MAX))
                    .blend(0f, v.compare(VectorOperators.LT, EXP_MIN)).intoArray(out, i, lanes);
        }
    }

    /**
     * out[i] = tanh(x[i]) for i < length: an odd polynomial below |x| = 0.625, 1 − 2/(e^{2|x|} + 1) above (±1
     * from |x| = 9). {@code out} may be {@code x}.
     */
    public static void tanh(float[] x, float[] out, int length) {
        tanh(x, out, length, new float[length]);
    }

    /** {@link #tanh(float[], float[], int)} with {@code e} (at least {@code length} long) as its scratch. */
    public static void tanh(float[] x, float[] out, int length, float[] e) {
        for (int i = 0; i < length; i += FS.length()) {
            VectorMask<Float> lanes = FS.indexInRange(i, length);
            FloatVector.fromArray(FS, x, i, lanes).abs().min(TANH_ONE).mul(2f).intoArray(e, i, lanes);
        }
        exp(e, e, length);
        FloatVector two = FloatVector.broadcast(FS, 2f);
        for (int i = 0; i < length; i += FS.length()) {
            VectorMask<Float> lanes = FS.indexInRange(i, length);
            FloatVector v = FloatVector.fromArray(FS, x, i, lanes);
            FloatVector z = v.mul(v);
            FloatVector p = z.fma(-5.70498872745e-3f, 2.06390887954e-2f);
            p = p.mul(z).add(-5.37397155531e-2f);
            p = p.mul(z).add(1.33314422036e-1f);
            p = p.mul(z).add(-3.33332819422e-1f);
            FloatVector small = p.mul(z).mul(v).add(v);
            FloatVector large = two.div(FloatVector.fromArray(FS, e, i, lanes).add(1f)).neg().add(1f)
                    .blend(1f, v.abs().compare(VectorOperators.GE, TANH_ONE));
            large.blend(large.neg(), v.compare(VectorOperators.LT, 0f))
                    .blend(small, v.abs().compare(VectorOperators.LT, TANH_SMALL)).intoArray(out, i, lanes);
        }
    }
}
