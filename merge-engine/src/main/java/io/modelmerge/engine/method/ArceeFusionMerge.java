package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.TopK;
import java.util.List;
import java.util.Optional;

/**
 * {@code arcee_fusion} (mergekit's arcee_fusion.py): takes the other model's change only where it matters. Each
 * element's importance is |θ − θ_base| times the KL divergence, over its row, between softmax(θ) and
 * softmax(θ_base) (each plus 1e-8); the change is kept where the importance reaches median + 1.5·IQR of the
 * tensor's importances: out = θ_base + (θ − θ_base)·[importance ≥ threshold].
 *
 * <p>Departure: the quartiles are exact. mergekit sorts the importances and takes the elements at
 * ⌊q·(n − 1)⌋ (no interpolation), which we match, but above a million elements it sorts a random sample drawn
 * without a seed, so its threshold varies from run to run; ours is the exact order statistic of all n, found by
 * radix select in two passes. The softmax and KL sums run in double.
 */
public final class ArceeFusionMerge implements MergeMethod {
    private static final double[] QUARTILES = {0.25, 0.5, 0.75};
    private static final double SOFTMAX_EPSILON = 1e-8;

    @Override
    public String name() {
        return "arcee_fusion";
    }

    @Override
    public boolean requiresBase() {
        return true;
    }

    @Override
    public int minModels() {
        return 1;
    }

    @Override
    public int maxModels() {
        return 1;
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return List.of();
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of();
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        return new Fusion(p.elements(), (int) p.columns());
    }

    /**
     * The importance of each element of {@code block} (whole rows of {@code columns}) into {@code importance}:
     * |θ − θ_base| · KL(softmax(θ_row) ‖ softmax(θ_base_row)).
     */
    static void importance(Block block, int columns, float[] importance) {
        float[] model = block.models()[0];
        float[] base = block.base();
        for (int row = 0; row < block.length(); row += columns) {
            double kl = rowDivergence(model, base, row, columns);
            for (int i = row; i < row + columns; i++) {
                importance[i] = (float) (Math.abs(model[i] - base[i]) * kl);
            }
        }
    }

    /** Σ p·log(p/q) over one row, p = softmax(θ) + 1e-8 and q = softmax(θ_base) + 1e-8. */
    private static double rowDivergence(float[] model, float[] base, int row, int columns) {
        double maxP = Double.NEGATIVE_INFINITY;
        double maxQ = Double.NEGATIVE_INFINITY;
        for (int i = row; i < row + columns; i++) {
            maxP = Math.max(maxP, model[i]);
            maxQ = Math.max(maxQ, base[i]);
        }
        double sumP = 0;
        double sumQ = 0;
        for (int i = row; i < row + columns; i++) {
            sumP += Math.exp(model[i] - maxP);
            sumQ += Math.exp(base[i] - maxQ);
        }
        double kl = 0;
        for (int i = row; i < row + columns; i++) {
            double p = Math.exp(model[i] - maxP) / sumP + SOFTMAX_EPSILON;
            double q = Math.exp(base[i] - maxQ) / sumQ + SOFTMAX_EPSILON;
            kl += p * Math.log(p / q);
        }
        return kl;
    }

    /** Two passes select the three quartiles of the importances exactly; the merge keeps what reaches the bar. */
    private static final class Fusion implements TensorMerge {
        private final int columns;
        private final TopK quartiles;
        private float threshold;

        Fusion(long elements, int columns) {
            this.columns = columns;
            long[] ranks = new long[QUARTILES.length];
            for (int q = 0; q < QUARTILES.length; q++) {
                // ascending index ⌊q·(n − 1)⌋ is the (n − index)-th largest
                ranks[q] = elements - (long) Math.floor(QUARTILES[q] * (elements - 1));
            }
            quartiles = new TopK(ranks);
        }

        /** One worker's counts of the importances in the current round of the quartiles' selection. */
        private final class Counts implements Accumulator {
            private final TopK.Counts counts = quartiles.counts();
            private float[] scratch = new float[0];

            @Override
            public void add(Block block) {
                if (scratch.length < block.length()) {
                    scratch = new float[block.length()];
                }
                importance(block, columns, scratch);
                counts.add(scratch, block.length());
            }
        }

        @Override
        public boolean rowAligned() {
            return true;
        }

        @Override
        public Optional<Pass<?>> nextPass() {
            if (quartiles.done()) {
                return Optional.empty();
            }
            return Optional.of(Pass.of("importance quartiles", Counts::new, this::end));
        }

        private void end(List<Counts> parts) {
            quartiles.end(parts.stream().map(c -> c.counts).toList());
            if (quartiles.done()) {
                float q1 = quartiles.threshold(0);
                float median = quartiles.threshold(1);
                float q3 = quartiles.threshold(2);
                threshold = median + 1.5f * (q3 - q1);
            }
        }

        @Override
        public void merge(Block block, float[] out) {
            importance(block, columns, out);
            float[] model = block.models()[0];
            float[] base = block.base();
            for (int i = 0; i < block.length(); i++) {
                float keep = out[i] >= threshold ? 1f : 0f;
                out[i] = base[i] + (model[i] - base[i]) * keep;
            }
        }
    }
}
