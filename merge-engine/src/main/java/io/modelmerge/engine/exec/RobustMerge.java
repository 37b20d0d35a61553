package io.modelmerge.engine.exec;

import java.util.Arrays;

/**
 * RobustMerge (Zeng et al., formerly CoPA-Merging) of one module's LoRA factors, as the authors' code merges them:
 * <ol>
 *   <li>each adapter's A [r, in] and B [out, r] are pruned apart to the entries whose magnitude is at least the
 *       k-th smallest, k = ⌊size·(1 − density)⌋ (ties kept);</li>
 *   <li>each rank i of each adapter gets sᵢ = Σⱼ|Aᵢⱼ| / Σⱼ|kept Aᵢⱼ|, then clamped from below to the
 *       ⌊r·(1 − att_ratio)⌋-th smallest of that adapter's s (the complementary scales);</li>
 *   <li>A = fuse·Σₜ pruned Aₜ; B's column i = fuse·Σₜ sₜᵢ·(pruned Bₜ)ᵢ / Σₜ sₜᵢ.</li>
 * </ol>
 * Where every entry of a rank's row of A is pruned, its sum of kept magnitudes is 0: the authors' code divides by
 * it (an infinite or NaN scale); here that rank's s is 1 (nothing kept, nothing to rescale), and its row of the
 * merged A gets nothing from that adapter anyway.
 */
final class RobustMerge {
    private RobustMerge() {
    }

    /** The merged A [r, in] and B [out, r] of adapters' {@code a[t]} and {@code b[t]} (all of rank r). */
    static float[][] merge(float[][] a, float[][] b, int rank, double density, double attRatio, double fuse) {
        int adapters = a.length;
        int in = a[0].length / rank;
        int out = b[0].length / rank;
        float[] mergedA = new float[rank * in];
        double[] weighted = new double[out * rank];
        double[] scaleSums = new double[rank];
        for (int t = 0; t < adapters; t++) {
            float[] prunedA = pruned(a[t], density);
            float[] prunedB = pruned(b[t], density);
            double[] scale = scales(a[t], prunedA, rank, attRatio);
            for (int i = 0; i < mergedA.length; i++) {
                mergedA[i] += (float) (fuse * prunedA[i]);
            }
            for (int o = 0; o < out; o++) {
                for (int c = 0; c < rank; c++) {
                    weighted[o * rank + c] += scale[c] * prunedB[o * rank + c];
                }
            }
            for (int c = 0; c < rank; c++) {
                scaleSums[c] += scale[c];
            }
        }
        float[] mergedB = new float[out * rank];
        for (int o = 0; o < out; o++) {
            for (int c = 0; c < rank; c++) {
                mergedB[o * rank + c] = (float) (fuse * weighted[o * rank + c] / scaleSums[c]);
            }
        }
        return new float[][] {mergedA, mergedB};
    }

    /** The entries of {@code w} whose magnitude is at least the k-th smallest (k = ⌊size·(1 − density)⌋), else 0. */
    static float[] pruned(float[] w, double density) {
        int k = (int) (w.length * (1 - density));
        float[] kept = w.clone();
        if (k < 1) {
            return kept;
        }
        float[] magnitudes = new float[w.length];
        for (int i = 0; i < w.length; i++) {
            magnitudes[i] = Math.abs(w[i]);
        }
        Arrays.sort(magnitudes);
        float kth = magnitudes[k - 1];
        for (int i = 0; i < kept.length; i++) {
            if (!(Math.abs(kept[i]) >= kth)) {
                kept[i] = 0;
            }
        }
        return kept;
    }

    /** Each rank's Σ|A| / Σ|kept A| (1 where nothing was kept), clamped from below at the att_ratio quantile. */
    static double[] scales(float[] a, float[] prunedA, int rank, double attRatio) {
        int in = a.length / rank;
        double[] s = new double[rank];
        for (int i = 0; i < rank; i++) {
            double all = 0;
            double kept = 0;
            for (int j = 0; j < in; j++) {
                all += Math.abs(a[i * in + j]);
                kept += Math.abs(prunedA[i * in + j]);
            }
            s[i] = kept == 0 ? 1 : all / kept;
        }
        double[] sorted = s.clone();
        Arrays.sort(sorted);
        double floor = sorted[Math.min(rank - 1, (int) (rank * (1 - attRatio)))];
        for (int i = 0; i < rank; i++) {
            s[i] = Math.max(s[i], floor);
        }
        return s;
    }
}
