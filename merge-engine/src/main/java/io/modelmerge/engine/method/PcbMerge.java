package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.TopK;
import io.modelmerge.engine.kernel.VectorMath;
import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Optional;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

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
    /** Elements β is computed for at a time: its scratch arrays stay in the first-level cache. */
    private static final int RUN = 2048;
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;

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
                return Optional.of(Pass.of("clip bounds", Clips::new, this::endClips));
            }
            if (betaSelection[0] == null || !betaSelection[0].done()) {
                return Optional.of(Pass.of("β threshold", Betas::new, this::endBetas));
            }
            return Optional.empty();
        }

        private final class Clips implements Accumulator {
            final TopK.Counts[] counts = new TopK.Counts[n];

            Clips() {
                for (int m = 0; m < n; m++) {
                    counts[m] = clips[m].counts();
                }
            }

            @Override
            public void add(Block block) {
                float[] tau = new float[block.length()];
                for (int m = 0; m < n; m++) {
                    for (int i = 0; i < block.length(); i++) {
                        tau[i] = block.models()[m][i] - block.base()[i];
                    }
                    counts[m].add(tau, block.length());
                }
            }
        }

        private void endClips(List<Clips> parts) {
            for (int m = 0; m < n; m++) {
                int model = m;
                clips[m].end(parts.stream().map(c -> c.counts[model]).toList());
                if (clips[m].done()) {
                    low[m] = clips[m].threshold(0);
                    high[m] = clips[m].threshold(1);
                }
            }
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
                float[][] beta = betas(block);
                float[] part = new float[block.length()];
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

        /** τ̃ = sign(τ)·clamp(|τ|, low, high) for a vector of task m's τ (0 where τ = 0, as torch.sign). */
        private FloatVector clipped(FloatVector tau, int m) {
            FloatVector magnitude = tau.abs().max(low[m]).min(high[m]);
            return magnitude.blend(magnitude.neg(), tau.compare(VectorOperators.LT, 0f))
                    .blend(0f, tau.compare(VectorOperators.EQ, 0f));
        }

        /**
         * β per task: exp(N·minmax(|τ̃|)²) · tanh(τ·Στ), by the array kernels over runs of {@link #RUN} elements,
         * so their scratch arrays stay in cache.
         */
        private float[][] betas(Block block) {
            int length = block.length();
            float[][] beta = new float[n][length];
            float[] base = block.base();
            float[] sum = new float[RUN];
            float[] intra = new float[RUN];
            float[] inter = new float[RUN];
            for (int from = 0; from < length; from += RUN) {
                int run = Math.min(RUN, length - from);
                for (int j = 0; j < run; j += FS.length()) {
                    VectorMask<Float> lanes = FS.indexInRange(j, run);
                    FloatVector b = FloatVector.fromArray(FS, base, from + j, lanes);
                    FloatVector total = FloatVector.zero(FS);
                    for (int m = 0; m < n; m++) {
                        total = total.add(FloatVector.fromArray(FS, block.models()[m], from + j, lanes).sub(b));
                    }
                    total.intoArray(sum, j, lanes);
                }
                for (int m = 0; m < n; m++) {
                    float range = high[m] - low[m];
                    float inverseRange = 1f / range; // a multiplication per element instead of a division
                    for (int j = 0; j < run; j += FS.length()) {
                        VectorMask<Float> lanes = FS.indexInRange(j, run);
                        FloatVector tau = FloatVector.fromArray(FS, block.models()[m], from + j, lanes)
                                .sub(FloatVector.fromArray(FS, base, from + j, lanes));
                        FloatVector normalised = range > 0
                                ? tau.abs().max(low[m]).min(high[m]).sub(low[m]).mul(inverseRange) : FloatVector.zero(FS);
                        normalised.mul(normalised).mul(n).intoArray(intra, j, lanes);
                        tau.mul(FloatVector.fromArray(FS, sum, j, lanes)).intoArray(inter, j, lanes);
                    }
                    VectorMath.exp(intra, intra, run);
                    VectorMath.tanh(inter, inter, run);
                    for (int j = 0; j < run; j += FS.length()) {
                        VectorMask<Float> lanes = FS.indexInRange(j, run);
                        FloatVector.fromArray(FS, intra, j, lanes).mul(FloatVector.fromArray(FS, inter, j, lanes))
                                .intoArray(beta[m], from + j, lanes);
                    }
                }
            }
            return beta;
        }

        @Override
        public void merge(Block block, float[] out) {
            float[][] beta = betas(block);
            int length = block.length();
            for (int i = 0; i < length; i += FS.length()) {
                VectorMask<Float> lanes = FS.indexInRange(i, length);
                FloatVector b = FloatVector.fromArray(FS, block.base(), i, lanes);
                FloatVector mixed = FloatVector.zero(FS);
                FloatVector scales = FloatVector.zero(FS);
                for (int m = 0; m < n; m++) {
                    FloatVector betaM = FloatVector.fromArray(FS, beta[m], i, lanes);
                    float range = max[m] - threshold[m];
                    FloatVector scale = range > 0 ? betaM.max(threshold[m]).sub(threshold[m]).div(range)
                            : FloatVector.zero(FS).blend(1f, betaM.compare(VectorOperators.GE, threshold[m]));
                    FloatVector tau = FloatVector.fromArray(FS, block.models()[m], i, lanes).sub(b);
                    mixed = scale.fma(clipped(tau, m), mixed);
                    scales = scales.add(scale);
                }
                mixed.div(scales.max(1e-12f)).fma(FloatVector.broadcast(FS, lambda), b).intoArray(out, i, lanes);
            }
        }
    }
}
