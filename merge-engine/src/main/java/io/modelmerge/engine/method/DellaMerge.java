package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.OrderFreeSum;
import io.modelmerge.engine.kernel.RandomMask;
import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Optional;

/**
 * {@code della} and {@code della_linear} (Deep et al., DELLA-Merging: MagPrune): within each row, every entry
 * of a task vector is kept with a probability that grows with its magnitude rank, linearly from density − ε
 * (smallest) to density + ε (largest), as mergekit's della_magprune ranks along the last dimension; the kept
 * entries are rescaled; then the task vectors are sign-elected and divided by the agreeing weights
 * ({@code della}) or summed ({@code della_linear}), scaled by λ and added to the base.
 *
 * <p>{@code rescale: l1} (mergekit, the default; {@code true} means the same) scales each task vector so it keeps
 * its L1 norm over the tensor, which takes one pass; {@code inverse_probability} (the paper) divides each kept
 * entry by its own keep probability; {@code none} ({@code false}) leaves them. An ε that puts a probability
 * outside (0, 1) is refused. The Bernoulli draws hash (seed, model, element index), as DARE's do.
 */
public final class DellaMerge implements MergeMethod {
    private final boolean linear;

    public DellaMerge(boolean linear) {
        this.linear = linear;
    }

    @Override
    public String name() {
        return linear ? "della_linear" : "della";
    }

    @Override
    public boolean requiresBase() {
        return true;
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return List.of(ParameterDef.required("weight", 0.5), ParameterDef.DENSITY.withExample(0.5),
                ParameterDef.number("epsilon", 0.15));
    }

    @Override
    public List<ParameterDef> globalParameters() {
        ParameterDef rescale = ParameterDef.variant("rescale", Rescale.L1, Rescale.L1, Rescale.INVERSE_PROBABILITY,
                Rescale.NONE);
        List<ParameterDef> common = List.of(ParameterDef.flag("normalize", !linear), ParameterDef.number("lambda", 1.0),
                rescale, ParameterDef.INT8_MASK);
        if (linear) {
            return common;
        }
        List<ParameterDef> all = new java.util.ArrayList<>(common);
        all.add(ParameterDef.ELECTION);
        return all;
    }

    @Override
    public void check(TensorParameters p) throws RecipeException {
        if (linear) {
            DividedWeights.checkWhenNormalizing(p, name());
        }
        for (int m = 0; m < p.models(); m++) {
            double density = p.modelNumber(m, "density");
            double epsilon = p.modelNumber(m, "epsilon");
            if (epsilon < 0) {
                throw new RecipeException("epsilon " + epsilon + " for tensor '" + p.tensor() + "' of model #" + (m + 1)
                        + " is negative");
            }
            if (density < 1 && !(density - epsilon > 0 && density + epsilon < 1)) {
                throw new RecipeException("epsilon " + epsilon + " for tensor '" + p.tensor() + "' of model #" + (m + 1)
                        + " puts keep probabilities outside (0, 1): density " + density + " ± epsilon must lie inside"
                        + " (0, 1)");
            }
        }
    }

    /**
     * With l1 rescaling, which entries the first pass kept, a bit per entry of each pruned model: the merge applies
     * them instead of ranking every row again.
     */
    @Override
    public long tensorStateBytes(TensorParameters p) {
        if (p.variant("rescale", Rescale.class) != Rescale.L1) {
            return 0;
        }
        long pruned = java.util.Arrays.stream(p.modelNumbers("density")).filter(d -> d < 1).count();
        return pruned * KeptBits.bytes(p.elements());
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        return new Della(p, TaskVectorSum.of(p, linear ? Election.NONE : p.variant("election", Election.class)),
                p.variant("rescale", Rescale.class));
    }

    private static final class Della implements TensorMerge {
        private final TaskVectorSum sum;
        private final Rescale rescale;
        private final int columns;
        private final double[] density;
        private final double[] epsilon;
        private final int[] seeds;
        private final float[] scale;
        /** Per model and magnitude rank within a row: the keep probability as a 24-bit threshold, and 1/p. */
        private final int[][] keepThreshold;
        private final float[][] inverseProbability;
        /** Per pruned model, with l1 rescaling: what the L1 pass kept, for the merge to keep. */
        private final KeptBits[] kept;
        private boolean scaled;

        Della(TensorParameters p, TaskVectorSum sum, Rescale rescale) {
            this.sum = sum;
            this.rescale = rescale;
            this.columns = (int) p.columns();
            int n = p.models();
            density = p.modelNumbers("density");
            epsilon = p.modelNumbers("epsilon");
            seeds = new int[n];
            scale = new float[n];
            keepThreshold = new int[n][];
            inverseProbability = new float[n][];
            kept = new KeptBits[n];
            for (int m = 0; m < n; m++) {
                seeds[m] = RandomMask.seed(p.seed(), m);
                scale[m] = 1f;
                if (density[m] >= 1) {
                    continue;
                }
                if (rescale == Rescale.L1) {
                    kept[m] = new KeptBits(p.elements());
                }
                keepThreshold[m] = new int[columns];
                inverseProbability[m] = new float[columns];
                for (int r = 0; r < columns; r++) {
                    double probability = density[m] - epsilon[m] + (columns > 1 ? 2 * epsilon[m] * r / (columns - 1) : 0);
                    keepThreshold[m][r] = RandomMask.threshold(probability);
                    inverseProbability[m][r] = (float) (1 / probability);
                }
            }
        }

        @Override
        public boolean rowAligned() {
            return true;
        }

        /** With l1 rescaling, one pass first: per model, Σ|δ| and Σ|kept δ|, row by row. */
        @Override
        public Optional<Pass<?>> nextPass() {
            if (rescale != Rescale.L1 || scaled) {
                return Optional.empty();
            }
            return Optional.of(Pass.of("L1 norms of the task vectors", this::l1Sums, this::rescale));
        }

        private BlockSums l1Sums() {
            int n = density.length;
            float[] delta = new float[columns]; // this accumulator's (one worker feeds it): a unit is at most a row
            return new BlockSums(2 * n, columns, (block, from, length, sums) -> {
                // every use below reads only [0, length), written first
                for (int m = 0; m < n; m++) {
                    float[] x = block.models()[m];
                    float[] base = block.base();
                    // the row's sums as one element after another from 0 gives them (a unit's partials start at 0)
                    OrderFreeSum.AbsSum all = OrderFreeSum.deltaAbsSum(x, base, from, length, delta);
                    sums[m] += all.value();
                    prune(delta, block.offset() + from, length, m, false);
                    sums[n + m] += all.ofSubset(delta, length);
                    if (kept[m] != null) {
                        // a kept +0 and a dropped entry merge alike: what is not +0 is the selection
                        kept[m].recordNonzero(block.offset() + from, delta, 0, length);
                    }
                }
            });
        }

        private void rescale(List<BlockSums> accumulators) {
            double[] sums = BlockSums.total(accumulators);
            int n = density.length;
            for (int m = 0; m < n; m++) {
                // As mergekit's rescaled_masked_tensor: unscaled when either norm is ~0.
                scale[m] = density[m] < 1 && sums[m] >= 1e-7 && sums[n + m] >= 1e-7 ? (float) (sums[m] / sums[n + m]) : 1f;
            }
            scaled = true;
        }

        /** Zeroes the dropped entries of the task vector rows in {@code delta}; divides kept ones by p if asked. */
        private void prune(float[] delta, long offset, int length, int m, boolean divideByProbability) {
            if (density[m] >= 1) {
                return;
            }
            RowRanks rows = RowRanks.forThread();
            for (int row = 0; row < length; row += columns) {
                RandomMask.keepByRank(delta, row, columns, seeds[m], offset + row, rows.ranks(delta, row, columns),
                        keepThreshold[m], divideByProbability ? inverseProbability[m] : null);
            }
        }

        @Override
        public void merge(Block block, float[] out) {
            float[] base = block.base();
            for (int m = 0; m < density.length; m++) {
                float[] x = block.models()[m];
                for (int i = 0; i < block.length(); i++) {
                    x[i] -= base[i];
                }
                if (kept[m] != null) {
                    kept[m].keepRecorded(block.offset(), x, 0, block.length());
                } else {
                    prune(x, block.offset(), block.length(), m, rescale == Rescale.INVERSE_PROBABILITY);
                }
                float factor = scale[m]; // a local, so the loop is compiled to vectors (x might alias the array)
                if (factor != 1f) {
                    for (int i = 0; i < block.length(); i++) {
                        x[i] *= factor;
                    }
                }
            }
            sum.into(block.models(), block.base(), out, block.length());
        }
    }
}
