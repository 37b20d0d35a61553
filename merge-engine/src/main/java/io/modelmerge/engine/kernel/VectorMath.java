package io.modelmerge.engine.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

/**
 * exp and tanh on float vectors from additions, multiplications and fused multiply-adds only, which IEEE 754
 * defines exactly: the same bits whether the Vector API runs compiled or interpreted. (Its own
 * {@code VectorOperators.EXP} and {@code TANH} call a vector math library once compiled and {@code Math}
 * before, which round differently, so a merge using them could change with JIT timing.) Both follow Cephes'
 * single-precision algorithms: about 1 ulp for exp, 2 for tanh.
 */
public final class VectorMath {
    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    /** 1.5 · 2^23: adding it rounds a float of magnitude below 2^22 to an integer, ties to even. */
    private static final float ROUNDER = 12582912f;
    private static final float EXP_MAX = 88.72283935546875f;
    private static final float EXP_MIN = -87.3365478515625f;

    private VectorMath() {
    }

    /** e^x per lane; +∞ above ~88.72, 0 below ~−87.34, NaN stays NaN. */
    public static FloatVector exp(FloatVector x) {
        FloatVector clamped = x.max(EXP_MIN).min(EXP_MAX);
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
        IntVector k1 = ((IntVector) shifted.reinterpretAsInts()).sub(Float.floatToRawIntBits(ROUNDER));
        IntVector k0 = k1.lanewise(VectorOperators.ASHR, 1);
        k1 = k1.sub(k0);
        FloatVector result = p.mul(k0.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats())
                .mul(k1.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats());
        VectorMask<Float> over = x.compare(VectorOperators.GT, EXP_MAX);
        VectorMask<Float> under = x.compare(VectorOperators.LT, EXP_MIN);
        return result.blend(Float.POSITIVE_INFINITY, over).blend(0f, under).blend(x, x.test(VectorOperators.IS_NAN));
    }

    /** tanh(x) per lane: a polynomial below |x| = 0.625, 1 − 2/(e^{2|x|} + 1) above, ±1 from |x| = 9. */
    public static FloatVector tanh(FloatVector x) {
        FloatVector a = x.abs();
        FloatVector z = x.mul(x);
        FloatVector p = z.fma(-5.70498872745e-3f, 2.06390887954e-2f);
        p = p.mul(z).add(-5.37397155531e-2f);
        p = p.mul(z).add(1.33314422036e-1f);
        p = p.mul(z).add(-3.33332819422e-1f);
        FloatVector small = p.mul(z).mul(x).add(x);
        FloatVector e = exp(a.min(9f).mul(2f));
        FloatVector large = FloatVector.broadcast(x.species(), 2f).div(e.add(1f)).neg().add(1f);
        large = large.blend(large.neg(), x.compare(VectorOperators.LT, 0f));
        return large.blend(small, a.compare(VectorOperators.LT, 0.625f));
    }
}
