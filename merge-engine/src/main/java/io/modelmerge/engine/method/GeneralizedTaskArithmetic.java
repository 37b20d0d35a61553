package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.MagnitudeBracket;
import io.modelmerge.engine.kernel.RandomMask;
import io.modelmerge.engine.kernel.TaskVectors;
import io.modelmerge.engine.kernel.TopK;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Task arithmetic in mergekit's general form (generalized_task_arithmetic.py), one fused pass per block:
 * each model's task vector δ = θ − θ_base is sparsified (top-k by magnitude, or a Bernoulli mask as DARE does)
 * and rescaled, weighted, optionally filtered by sign election, summed, optionally divided, scaled by λ and
 * added to the base.
 *
 * <p>Sign election, variant {@code mergekit}: the majority sign is that of Σ wᵢδᵢ (zero counts as +), an
 * entry agrees when its weighted delta has that sign, and the sum is divided by the sum of agreeing weights.
 * Variant {@code paper} (TIES paper, PEFT): the majority sign is that of the unweighted Σ δᵢ, and the sum of
 * agreeing weighted deltas is divided by the number of agreeing models.
 *
 * <p>Rescale, variant {@code l1} (mergekit; DARE's default, and offered on the magnitude methods as mergekit
 * offers it): the kept entries are scaled so the task vector keeps its L1 norm; {@code inverse_density} (DARE
 * paper, PEFT): kept entries are divided by the density.
 *
 * <p>Random masks are {@link RandomMask}'s, seeded per model: the result does not depend on block sizes or thread
 * scheduling.
 */
public final class GeneralizedTaskArithmetic {

    public enum Sparsification { NONE, MAGNITUDE, RANDOM }

    private GeneralizedTaskArithmetic() {
    }

    /**
     * The merge of one tensor.
     *
     * @param sparsification how task vectors are thinned before merging
     * @param election       how the task vectors combine
     * @param rescale        how the kept entries are scaled ({@code L1}; for RANDOM also {@code INVERSE_DENSITY}; {@code NONE})
     */
    public static TensorMerge forTensor(TensorParameters p, Sparsification sparsification, Election election,
                                        boolean normalize, double lambda, Rescale rescale) {
        int n = p.models();
        float[] weights = new float[n];
        double[] density = new double[n];
        for (int m = 0; m < n; m++) {
            weights[m] = (float) p.modelNumber(m, "weight");
            density[m] = p.perModel().get(m).containsKey("density") ? p.modelNumber(m, "density") : 1.0;
        }
        return new Merge(p, sparsification, election, normalize, (float) lambda, rescale, weights, density);
    }

    private static final class Merge implements TensorMerge {
        private final TensorParameters p;
        private final Sparsification sparsification;
        private final TaskVectorSum combination;
        private final Rescale rescale;
        private final float[] weights;
        private final double[] density;
        private final int[] seeds;
        private final int[] threshold24;
        private final float[] magnitudeThreshold;
        private final float[] scale;
        private final boolean[] sparse;
        /** Per model: the bracket from the sampled pass, and the exact selection where the bracket failed. */
        private final MagnitudeBracket[] brackets;
        private final TopK[] exactSelection;
        private boolean settled;
        private boolean scaled;
        /** Exactly k entries per selected model, ties at the threshold kept by position (else all of them). */
        private final boolean exactK;
        /** Per model: how many entries lie at or above its selected threshold (more than k where some tie with it). */
        private final long[] atOrAbove;
        /** Exactly k entries for the models whose threshold has more entries at or above it than k. */
        private final RankWindow window;

        Merge(TensorParameters p, Sparsification sparsification, Election election, boolean normalize, float lambda,
              Rescale rescale, float[] weights, double[] density) {
            this.p = p;
            this.sparsification = sparsification;
            this.combination = new TaskVectorSum(weights, election, normalize, lambda);
            this.rescale = rescale;
            this.weights = weights;
            this.density = density;
            int n = weights.length;
            this.seeds = new int[n];
            this.threshold24 = new int[n];
            this.magnitudeThreshold = new float[n];
            this.scale = new float[n];
            this.sparse = new boolean[n];
            this.brackets = new MagnitudeBracket[n];
            this.exactSelection = new TopK[n];
            this.atOrAbove = new long[n];
            this.window = new RankWindow(n);
            this.exactK = sparsification == Sparsification.MAGNITUDE && p.modelThresholds().isEmpty()
                    && p.global().containsKey(ParameterDef.THRESHOLD_TIES.name())
                    && p.variant(ParameterDef.THRESHOLD_TIES.name(), ThresholdTies.class) == ThresholdTies.POSITION;
            for (int m = 0; m < n; m++) {
                seeds[m] = RandomMask.seed(p.seed(), m);
                sparse[m] = sparsification != Sparsification.NONE && density[m] < 1.0;
                threshold24[m] = RandomMask.threshold(density[m]);
                scale[m] = sparsification == Sparsification.RANDOM && sparse[m] && rescale == Rescale.INVERSE_DENSITY
                        ? (float) (1.0 / density[m]) : 1f;
                if (sparsification == Sparsification.MAGNITUDE && sparse[m] && !p.modelThresholds().isEmpty()) {
                    magnitudeThreshold[m] = p.modelThresholds().get(m); // chosen over the whole model: no passes
                } else if (sparsification == Sparsification.MAGNITUDE && sparse[m] && k(m) == 0) {
                    magnitudeThreshold[m] = Float.POSITIVE_INFINITY; // nothing survives a density this low
                }
            }
        }

        private boolean selectingAny() {
            if (!p.modelThresholds().isEmpty()) {
                return false;
            }
            for (int m = 0; m < weights.length; m++) {
                if (selecting(m)) {
                    return true;
                }
            }
            return false;
        }

        private boolean l1Rescaled() {
            if (sparsification == Sparsification.NONE || rescale != Rescale.L1) {
                return false;
            }
            for (boolean s : sparse) {
                if (s) {
                    return true;
                }
            }
            return false;
        }

        /** Whether model m's magnitude threshold is to be selected (sparse, and some entries survive). */
        private boolean selecting(int m) {
            return sparsification == Sparsification.MAGNITUDE && sparse[m]
                    && magnitudeThreshold[m] != Float.POSITIVE_INFINITY;
        }

        private long k(int m) {
            return (long) Math.floor(density[m] * p.elements());
        }

        /**
         * Magnitude thresholds: a sampled pass brackets each model's threshold, a second pass settles it within
         * the bracket; models whose bracket was too wide or missed take the two exact rounds of a radix select.
         * L1 rescaling (after the thresholds, for magnitude): one pass of the norms.
         */
        @Override
        public Optional<Pass<?>> nextPass() {
            if (selectingAny()) {
                if (brackets[firstSelecting()] == null) {
                    // Tensors this large sample one block in 16 for the bracket; smaller ones read all of it.
                    return Optional.of(Pass.of("sampled magnitude brackets", this::samples, this::bracket)
                            .sampling(p.elements() >= (1L << 22) ? 16 : 1));
                }
                if (!settled) {
                    return Optional.of(Pass.of("magnitudes within the brackets", this::candidates, this::settle));
                }
                Optional<Pass<?>> exact = new TaskVectorSelections(exactSelection).nextPass("exact magnitude thresholds",
                        () -> {
                            for (int m = 0; m < weights.length; m++) {
                                if (exactSelection[m] != null) {
                                    magnitudeThreshold[m] = exactSelection[m].threshold();
                                    atOrAbove[m] = exactSelection[m].atOrAbove();
                                }
                            }
                        });
                if (exact.isPresent()) {
                    return exact;
                }
                if (exactK && !window.counted() && dropsTiesAny()) {
                    for (int m = 0; m < weights.length; m++) {
                        if (dropsTies(m)) {
                            window.set(m, 0, k(m), Float.POSITIVE_INFINITY, magnitudeThreshold[m]);
                        }
                    }
                    return Optional.of(window.pass());
                }
            }
            if (l1Rescaled() && !scaled) {
                return Optional.of(Pass.of("L1 norms of the task vectors", this::l1Sums, this::rescale));
            }
            return Optional.empty();
        }

        /** Whether keeping exactly k of model m's entries drops some tied with its threshold. */
        private boolean dropsTies(int m) {
            return selecting(m) && atOrAbove[m] > k(m);
        }

        private boolean dropsTiesAny() {
            for (int m = 0; m < weights.length; m++) {
                if (dropsTies(m)) {
                    return true;
                }
            }
            return false;
        }

        private int firstSelecting() {
            int m = 0;
            while (!selecting(m)) {
                m++;
            }
            return m;
        }

        /** Per selecting model, a sampled histogram of |δ|. */
        private TaskVectorCounts<MagnitudeBracket.Sample> samples() {
            List<MagnitudeBracket.Sample> samples = new ArrayList<>();
            for (int m = 0; m < weights.length; m++) {
                samples.add(selecting(m) ? new MagnitudeBracket.Sample() : null);
            }
            return new TaskVectorCounts<>(samples, MagnitudeBracket.Sample::add);
        }

        private void bracket(List<TaskVectorCounts<MagnitudeBracket.Sample>> parts) {
            for (int m = 0; m < weights.length; m++) {
                if (selecting(m)) {
                    int model = m;
                    brackets[m] = MagnitudeBracket.of(parts.stream().map(s -> s.counter(model)).toList(), k(m),
                            p.elements(), p.elements() < (1L << 22));
                    if (!brackets[m].usable()) {
                        exactSelection[m] = new TopK(k(m));
                    }
                }
            }
        }

        /** Per model with a usable bracket, the exact count above it and the values inside it. */
        private TaskVectorCounts<MagnitudeBracket.Candidates> candidates() {
            List<MagnitudeBracket.Candidates> candidates = new ArrayList<>();
            for (int m = 0; m < weights.length; m++) {
                candidates.add(selecting(m) && exactSelection[m] == null ? brackets[m].candidates() : null);
            }
            return new TaskVectorCounts<>(candidates, MagnitudeBracket.Candidates::add);
        }

        private void settle(List<TaskVectorCounts<MagnitudeBracket.Candidates>> parts) {
            for (int m = 0; m < weights.length; m++) {
                if (selecting(m) && exactSelection[m] == null) {
                    int model = m;
                    var threshold = brackets[m].threshold(parts.stream().map(c -> c.counter(model)).toList(), k(m));
                    if (threshold.isPresent()) {
                        magnitudeThreshold[m] = threshold.get().value();
                        atOrAbove[m] = threshold.get().atOrAbove();
                    } else {
                        exactSelection[m] = new TopK(k(m)); // the sample misled: two more passes, exact
                    }
                }
            }
            settled = true;
        }

        /** Per model, Σ|δ| and Σ|kept δ| for L1 rescaling, over {@link BlockSums#CHUNK}-element runs. */
        private BlockSums l1Sums() {
            int n = weights.length;
            return new BlockSums(2 * n, (block, from, length, sums) -> {
                for (int m = 0; m < n; m++) {
                    if (sparse[m]) {
                        TaskVectors.addL1(block.models()[m], block.base(), thinning(m, block.offset()), from, length,
                                sums, m, n + m);
                    }
                }
            });
        }

        private void rescale(List<BlockSums> accumulators) {
            int n = weights.length;
            double[] sums = BlockSums.total(accumulators);
            for (int m = 0; m < n; m++) {
                if (window.counted() && window.cuts(m)) {
                    // the kept sum counted every tie at the threshold; the window drops some
                    sums[n + m] -= window.droppedAtLower(m);
                }
                // As mergekit's rescaled_masked_tensor: leave the mask unscaled when either norm is ~0.
                scale[m] = sparse[m] && sums[m] >= 1e-7 && sums[n + m] >= 1e-7 ? (float) (sums[m] / sums[n + m]) : 1f;
            }
            scaled = true;
        }

        /**
         * Merges in two small loops (small enough to be compiled with vectors kept in registers): each model's
         * block is turned into its trimmed, rescaled task vector in place, then the task vectors are combined.
         */
        @Override
        public void merge(Block block, float[] out) {
            for (int m = 0; m < weights.length; m++) {
                if (window.counted() && window.cuts(m)) {
                    window.thin(block, m, scale[m]);
                } else {
                    TaskVectors.thin(block.models()[m], block.base(), thinning(m, block.offset()), scale[m],
                            block.length());
                }
            }
            combination.into(block.models(), block.base(), out, block.length());
        }

        /** Model m's random mask over a block whose first element is element {@code offset} of the tensor. */
        private TaskVectors.Thinning.Random mask(int m, long offset) {
            return new TaskVectors.Thinning.Random(seeds[m], threshold24[m], offset);
        }

        /** How model m's task vector is thinned in a block at {@code offset}. */
        private TaskVectors.Thinning thinning(int m, long offset) {
            if (!sparse[m]) {
                return new TaskVectors.Thinning.None();
            }
            return switch (sparsification) {
                case NONE -> new TaskVectors.Thinning.None();
                case MAGNITUDE -> new TaskVectors.Thinning.Magnitude(magnitudeThreshold[m]);
                case RANDOM -> mask(m, offset);
            };
        }
    }
}
