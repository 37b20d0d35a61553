package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.OrderFreeSum;
import io.modelmerge.engine.kernel.SignElection;
import io.modelmerge.engine.kernel.TaskVectors;
import io.modelmerge.engine.kernel.TopK;
import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Optional;

/**
 * {@code sce} (Wan et al., FuseChat: Select, Calculate, Erase; mergekit's sce.py). Select: keep the entries
 * whose variance across the task vectors is in the top {@code select_topk} fraction of the nonzero variances
 * (an exact radix select over the tensor). Calculate: each model's weight is the mean of its selected task
 * vector squared, divided by the sum over models (uniform when that sum is below 1e-6). Erase: drop entries
 * whose sign differs from the sign of the sum of the task vectors (zero agrees with neither). The result is
 * base + Σ wᵢτᵢ / Σ wᵢ over the agreeing entries (divisor floored at 1e-6).
 */
public final class SceMerge implements MergeMethod {

    @Override
    public String name() {
        return "sce";
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
        return List.of(ParameterDef.number("select_topk", 1.0), ParameterDef.INT8_MASK);
    }

    @Override
    public void check(TensorParameters p) throws RecipeException {
        double topk = p.number("select_topk");
        if (!(topk >= 0 && topk <= 1)) {
            throw new RecipeException("select_topk " + topk + " for tensor '" + p.tensor() + "' is outside [0, 1]");
        }
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        return new Sce(p.models(), p.elements(), p.number("select_topk"));
    }

    private static final class Sce implements TensorMerge {
        private final int n;
        private final long elements;
        private final double topk;
        /** The variance threshold's selection, its rank given once the first round has counted the nonzero ones. */
        private final TopK selection = new TopK();
        private boolean selecting;
        private boolean ranked;
        private float threshold;
        private float[] weights;

        Sce(int n, long elements, double topk) {
            this.n = n;
            this.elements = elements;
            this.topk = topk;
            this.selecting = topk > 0 && topk < 1;
            this.threshold = topk >= 1 ? Float.NEGATIVE_INFINITY : Float.POSITIVE_INFINITY;
        }

        /** Select (when 0 < select_topk < 1): the variance threshold, in two rounds; then Calculate: the weights. */
        @Override
        public Optional<Pass<?>> nextPass() {
            if (selecting) {
                return Optional.of(Pass.of("variance threshold", Variances::new, this::select));
            }
            if (weights == null) {
                return Optional.of(Pass.of("weights", this::squares, this::weigh));
            }
            return Optional.empty();
        }

        /** One worker's count of nonzero variances and its counts for the current round of the selection. */
        private final class Variances implements Accumulator {
            final TopK.Counts counts = selection.counts();
            long nonzero;

            @Override
            public void add(Block block) {
                float[] v = variances(block, 0, block.length());
                for (int i = 0; i < block.length(); i++) {
                    if (v[i] != 0) {
                        nonzero++;
                    }
                }
                counts.add(v, block.length());
            }
        }

        private void select(List<Variances> parts) {
            selection.end(parts.stream().map(v -> v.counts).toList());
            if (ranked) {
                threshold = selection.threshold();
                selecting = false;
                return;
            }
            long nonzero = parts.stream().mapToLong(v -> v.nonzero).sum();
            long k = (long) Math.floor(nonzero * topk);
            if (k == 0) {
                selecting = false; // nothing selected: the threshold stays +∞
                return;
            }
            selection.rank(k);
            ranked = true;
        }

        /** Per model, Σ τ² over the selected entries. */
        private BlockSums squares() {
            // this accumulator's (one worker feeds it): a unit is at most BlockSums.CHUNK elements
            float[] variance = new float[BlockSums.CHUNK];
            return new BlockSums(n, (block, from, length, sums) -> {
                TaskVectors.variance(block.models(), n, block.base(), from, length, variance);
                float[] base = block.base();
                for (int m = 0; m < n; m++) {
                    // the sum as one element after another from 0 gives it (a unit's partials start at 0)
                    sums[m] += OrderFreeSum.deltaSquareSum(block.models()[m], base, from, variance, threshold, length);
                }
            });
        }

        private void weigh(List<BlockSums> accumulators) {
            double[] sums = BlockSums.total(accumulators);
            double total = 0;
            for (int m = 0; m < n; m++) {
                sums[m] /= elements;
                total += sums[m];
            }
            weights = new float[n];
            for (int m = 0; m < n; m++) {
                weights[m] = (float) (Math.abs(total) < 1e-6 ? 1.0 / n : sums[m] / total);
            }
        }

        /**
         * The population variance of the task vectors at elements [from, from + length) of the block, in F32 as
         * mergekit computes it.
         */
        private float[] variances(Block block, int from, int length) {
            float[] variance = new float[length];
            TaskVectors.variance(block.models(), n, block.base(), from, length, variance);
            return variance;
        }

        /** Selected entries: sign election on Σ τ (0 elects +; a zero τ agrees with neither), weighted mean. */
        @Override
        public void merge(Block block, float[] out) {
            float[] variance = variances(block, 0, block.length());
            SignElection.weightedMean(block.models(), n, weights, block.base(), variance, threshold, out, block.length());
        }
    }
}
