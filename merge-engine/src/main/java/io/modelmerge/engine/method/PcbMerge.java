package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.CompetitionBalance;
import io.modelmerge.engine.kernel.TopK;
import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Optional;

/**
 * {@code pcb} (Du et al., Parameter Competition Balancing), per tensor, as the authors' PCB_merge:
 * <ol>
 *   <li>each task vector's magnitudes are clipped to its low and high quantile (0.01% of the entries at each end),
 *       keeping signs: τ̃ᵢ;</li>
 *   <li>intra-balancing exp(N·minmax(|τ̃ᵢ|)²) (N models), inter-balancing tanh(τᵢ·Σⱼτⱼ), and β = their product;</li>
 *   <li>per task, β is clamped from below at its (1 − {@code pcb_ratio}) quantile and min-max normalised: the
 *       top {@code pcb_ratio} of entries get scales in (0, 1], the rest 0;</li>
 *   <li>θ = θ₀ + λ · Σ scaleᵢτ̃ᵢ / max(Σ scaleᵢ, 1e-12).</li>
 * </ol>
 * Quantiles are exact order statistics by radix select (β is signed: positives and negatives are selected
 * apart), so the tensor is read four times before the merge. {@code pcb_clip: symmetric} (default) clips
 * ⌊0.0001·n⌋ entries at each end, none for tensors under 10,000 entries; {@code reference} uses the released
 * code's indices (low ⌊0.0001·n⌋, high ⌊0.9999·n − 1⌋), which always clip at least the single largest entry.
 * Where all clipped magnitudes are equal minmax is taken as 0, and where β's kept range is a single value every
 * kept entry gets scale 1 (the reference code divides by zero in both).
 */
public final class PcbMerge implements MergeMethod {
    private static final double CLIP = 0.0001;

    /** Where τ is clipped: at symmetric quantiles, or at the reference code's indices (which clip the largest entry). */
    enum Clip implements Variant {
        SYMMETRIC, REFERENCE
    }

    @Override
    public String name() {
        return "pcb";
    }

    @Override
    public boolean requiresBase() {
        return true;
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return List.of();
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of(ParameterDef.number("pcb_ratio", 0.1), ParameterDef.number("lambda", 1.0),
                ParameterDef.variant("pcb_clip", Clip.SYMMETRIC, Clip.values()));
    }

    @Override
    public void check(TensorParameters p) throws RecipeException {
        double ratio = p.number("pcb_ratio");
        if (!(ratio > 0 && ratio <= 1)) {
            throw new RecipeException("pcb_ratio " + ratio + " for tensor '" + p.tensor() + "' is outside (0, 1]");
        }
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        return new Pcb(p.models(), p.elements(), p.number("pcb_ratio"), (float) p.number("lambda"),
                p.variant("pcb_clip", Clip.class) == Clip.REFERENCE);
    }

    private static final class Pcb implements TensorMerge {
        private final int n;
        private final long d;
        private final double ratio;
        private final float lambda;
        /** Per task: the selection of the low and high clip magnitude, then the clip bounds. */
        private final TopK[] clips;
        private final float[] low;
        private final float[] high;
        /**
         * Per task: selections over β⁺ and |β⁻|, of which the first round shows which holds β's threshold
         * ({@code betaSelection}); its sign, the threshold and β's maximum.
         */
        private final TopK[] positive;
        private final TopK[] negative;
        private final TopK[] betaSelection;
        private final boolean[] negativeThreshold;
        private final float[] threshold;
        private final float[] max;

        Pcb(int n, long d, double ratio, float lambda, boolean reference) {
            this.n = n;
            this.d = d;
            this.ratio = ratio;
            this.lambda = lambda;
            long lowIndex = (long) (d * CLIP);
            long highIndex = reference ? (long) (d * (1 - CLIP) - 1) : d - 1 - lowIndex;
            clips = new TopK[n];
            positive = new TopK[n];
            negative = new TopK[n];
            for (int m = 0; m < n; m++) {
                clips[m] = new TopK(d - lowIndex, d - Math.max(highIndex, lowIndex)); // as k-th largest
                positive[m] = new TopK();
                negative[m] = new TopK();
            }
            low = new float[n];
            high = new float[n];
            betaSelection = new TopK[n];
            negativeThreshold = new boolean[n];
            threshold = new float[n];
            max = new float[n];
        }

        /** Two rounds select the clip bounds of |τ|; two more, β's threshold (all tasks move together). */
        @Override
        public Optional<Pass<?>> nextPass() {
            if (!clips[0].done()) {
                return new TaskVectorSelections(clips).nextPass("clip bounds", () -> {
                    for (int m = 0; m < n; m++) {
                        low[m] = clips[m].threshold(0);
                        high[m] = clips[m].threshold(1);
                    }
                });
            }
            if (betaSelection[0] == null || !betaSelection[0].done()) {
                return Optional.of(Pass.of("β threshold", Betas::new, this::endBetas));
            }
            return Optional.empty();
        }

        /**
         * First round: per task, β's negatives counted, its maximum, and the counts of β⁺ and |β⁻|; second round:
         * the counts of the side that holds the threshold.
         */
        private final class Betas implements Accumulator {
            final boolean first = betaSelection[0] == null;
            final TopK.Counts[] positives = new TopK.Counts[n];
            final TopK.Counts[] negatives = new TopK.Counts[n];
            final long[] negativeCount = new long[n];
            final float[] largest = new float[n];
            /** β and one side of it, for the blocks one worker feeds this accumulator, grown to the longest. */
            private float[][] beta = new float[n][0];
            private float[] part = new float[0];

            Betas() {
                for (int m = 0; m < n; m++) {
                    boolean counted = first || !negativeThreshold[m];
                    positives[m] = counted ? positive[m].counts() : null;
                    negatives[m] = first || negativeThreshold[m] ? negative[m].counts() : null;
                    largest[m] = Float.NEGATIVE_INFINITY;
                }
            }

            @Override
            public void add(Block block) {
                if (part.length < block.length()) {
                    beta = new float[n][block.length()];
                    part = new float[block.length()];
                }
                CompetitionBalance.betas(block.models(), n, block.base(), low, high, block.length(), beta);
                for (int m = 0; m < n; m++) {
                    if (positives[m] != null) {
                        for (int i = 0; i < block.length(); i++) {
                            part[i] = Math.max(beta[m][i], 0f);
                        }
                        positives[m].add(part, block.length());
                    }
                    if (negatives[m] != null) {
                        for (int i = 0; i < block.length(); i++) {
                            part[i] = Math.min(beta[m][i], 0f);
                        }
                        negatives[m].add(part, block.length());
                    }
                    if (first) {
                        for (int i = 0; i < block.length(); i++) {
                            float b = beta[m][i];
                            negativeCount[m] += b < 0 ? 1 : 0;
                            largest[m] = Math.max(largest[m], b);
                        }
                    }
                }
            }
        }

        private void endBetas(List<Betas> parts) {
            for (int m = 0; m < n; m++) {
                int model = m;
                if (betaSelection[m] != null) {
                    betaSelection[m].end(parts.stream()
                            .map(b -> negativeThreshold[model] ? b.negatives[model] : b.positives[model]).toList());
                    float t = betaSelection[m].threshold();
                    threshold[m] = negativeThreshold[m] ? -t : t;
                    continue;
                }
                positive[m].end(parts.stream().map(b -> b.positives[model]).toList());
                negative[m].end(parts.stream().map(b -> b.negatives[model]).toList());
                long negatives = 0;
                max[m] = Float.NEGATIVE_INFINITY;
                for (Betas b : parts) {
                    negatives += b.negativeCount[m];
                    max[m] = Math.max(max[m], b.largest[m]);
                }
                // The threshold is β sorted ascending at ⌊d·(1 − ratio)⌋: the k-th largest.
                long k = d - (long) (d * (1 - ratio));
                long nonNegative = d - negatives;
                negativeThreshold[m] = k > nonNegative;
                betaSelection[m] = negativeThreshold[m] ? negative[m] : positive[m];
                // Among negatives, the (k − nonNegative)-th largest value is the
                // (negatives − (k − nonNegative) + 1)-th largest magnitude.
                betaSelection[m].rank(negativeThreshold[m] ? negatives - (k - nonNegative) + 1 : k);
            }
        }

        @Override
        public void merge(Block block, float[] out) {
            float[][] beta = CompetitionBalance.betas(block.models(), n, block.base(), low, high, block.length());
            CompetitionBalance.merge(block.models(), n, block.base(), beta, low, high, threshold, max, lambda, out,
                    block.length());
        }
    }
}
