package io.modelmerge.engine.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Parameter competition balancing (PCB) over task vectors τₘ = x[m] − base: the balance β of each entry, and the
 * merge of the clipped task vectors scaled by their kept β.
 */
public final class CompetitionBalance {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    /** β is computed over runs this long, so the scratch arrays of the exp and tanh kernels stay in cache. */
    private static final int RUN = 2048;

    private CompetitionBalance() {
    }

    /**
     * β per task over elements [0, length): exp(N·minmax(|τ̃ₘ|)²) · tanh(τₘ·Σⱼτⱼ), where τ̃ₘ is τₘ's magnitude
     * clamped to [low[m], high[m]] and minmax maps that range to [0, 1] (to 0 where it is a single value).
     */
    public static float[][] betas(float[][] x, int n, float[] base, float[] low, float[] high, int length) {
        return betas(x, n, base, low, high, length, new float[n][length]);
    }

    /** {@link #betas(float[][], int, float[], float[], float[], int)} written into {@code beta}, which it returns. */
    public static float[][] betas(float[][] x, int n, float[] base, float[] low, float[] high, int length,
                                  float[][] beta) {
        float[] sum = new float[RUN];
        float[] intra = new float[RUN];
        float[] inter = new float[RUN];
        float[] scratch = new float[RUN];
        for (int from = 0; from < length; from += RUN) {
            int run = Math.min(RUN, length - from);
            for (int j = 0; j < run; j += FS.length()) {
                VectorMask<Float> lanes = FS.indexInRange(j, run);
                FloatVector b = FloatVector.fromArray(FS, base, from + j, lanes);
                FloatVector total = FloatVector.zero(FS);
                for (int m = 0; m < n; m++) {
                    total = total.add(FloatVector.fromArray(FS, x[m], from + j, lanes).sub(b));
                }
                total.intoArray(sum, j, lanes);
            }
            for (int m = 0; m < n; m++) {
                float range = high[m] - low[m];
                float inverseRange = 1f / range; // a multiplication per element instead of a division
                // zero where the range is a single value: a mask from a number, not a branch between vectors
                VectorMask<Float> spread = VectorMask.fromLong(FS, range > 0 ? -1L : 0L);
                for (int j = 0; j < run; j += FS.length()) {
                    VectorMask<Float> lanes = FS.indexInRange(j, run);
                    FloatVector tau = FloatVector.fromArray(FS, x[m], from + j, lanes)
                            .sub(FloatVector.fromArray(FS, base, from + j, lanes));
                    FloatVector normalised = FloatVector.zero(FS)
                            .blend(tau.abs().max(low[m]).min(high[m]).sub(low[m]).mul(inverseRange), spread);
                    normalised.mul(normalised).mul(n).intoArray(intra, j, lanes);
                    tau.mul(FloatVector.fromArray(FS, sum, j, lanes)).intoArray(inter, j, lanes);
                }
                VectorMath.exp(intra, intra, run);
                VectorMath.tanh(inter, inter, run, scratch);
                for (int j = 0; j < run; j += FS.length()) {
                    VectorMask<Float> lanes = FS.indexInRange(j, run);
                    FloatVector.fromArray(FS, intra, j, lanes).mul(FloatVector.fromArray(FS, inter, j, lanes))
                            .intoArray(beta[m], from + j, lanes);
                }
            }
        }
        return beta;
    }

    /**
     * out = base + λ · Σ sₘτ̃ₘ / max(Σ sₘ, 1e-12), where τ̃ₘ = sign(τₘ)·clamp(|τₘ|, low[m], high[m]) and the scale
     * sₘ = (max(βₘ, threshold[m]) − threshold[m]) / (max[m] − threshold[m]), or 1 where βₘ reaches the threshold
     * when that range is empty.
     */
    public static void merge(float[][] x, int n, float[] base, float[][] beta, float[] low, float[] high,
                             float[] threshold, float[] max, float lambda, float[] out, int length) {
        for (int i = 0; i < length; i += FS.length()) {
            VectorMask<Float> lanes = FS.indexInRange(i, length);
            FloatVector b = FloatVector.fromArray(FS, base, i, lanes);
            FloatVector mixed = FloatVector.zero(FS);
            FloatVector scales = FloatVector.zero(FS);
            for (int m = 0; m < n; m++) {
                FloatVector betaM = FloatVector.fromArray(FS, beta[m], i, lanes);
                float range = max[m] - threshold[m];
                // a ramp over the range, or a step at the threshold where the range is empty: both computed and
                // one taken under a mask made from the number, as no vector is chosen by a branch in a loop
                FloatVector ramp = betaM.max(threshold[m]).sub(threshold[m]).div(range);
                FloatVector step = FloatVector.zero(FS).blend(1f, betaM.compare(VectorOperators.GE, threshold[m]));
                FloatVector scale = step.blend(ramp, VectorMask.fromLong(FS, range > 0 ? -1L : 0L));
                FloatVector tau = FloatVector.fromArray(FS, x[m], i, lanes).sub(b);
                // sign(τ)·clamp(|τ|, low, high), 0 where τ = 0 (as torch.sign)
                FloatVector magnitude = tau.abs().max(low[m]).min(high[m]);
                FloatVector clipped = magnitude.blend(magnitude.neg(), tau.compare(VectorOperators.LT, 0f))
                        .blend(0f, tau.compare(VectorOperators.EQ, 0f));
                mixed = scale.fma(clipped, mixed);
                scales = scales.add(scale);
            }
            mixed.div(scales.max(1e-12f)).fma(FloatVector.broadcast(FS, lambda), b).intoArray(out, i, lanes);
        }
    }
}
