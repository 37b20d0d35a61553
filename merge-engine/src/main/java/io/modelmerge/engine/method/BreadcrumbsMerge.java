package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.TaskVectors;
import io.modelmerge.engine.kernel.TopK;
import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Optional;

/**
 * {@code breadcrumbs} and {@code breadcrumbs_ties} (Davari and Belilovsky, Model Breadcrumbs): each task vector
 * loses its largest {@code gamma} fraction of entries by magnitude (outliers) and then its smallest, so that a
 * {@code density} fraction remains (mergekit's magnitude_outliers: when the two overlap, fewer outliers go);
 * then the task vectors are summed ({@code breadcrumbs}) or sign-elected ({@code breadcrumbs_ties}), weighted,
 * scaled by λ and added to the base. {@code density: 1} keeps the task vector whole.
 *
 * <p>{@code breadcrumbs_scope: tensor} (mergekit) ranks over the whole tensor, with two exact magnitude
 * thresholds found by radix select. As mergekit, exactly ⌊density·n⌋ entries are kept: in the order |δ|
 * descending, ties by position, the entries ranked after the outliers ({@link RankWindow}); one more pass finds
 * where the kept ties end when some entries tie with a threshold. {@code threshold_ties: all} decides by the
 * thresholds alone instead (entries equal to the outlier threshold go with the outliers, those equal to the keep
 * threshold are kept);
 * {@code row} (the paper's code) ranks within each row, by exact counts. When ⌊γ·n⌋ = 0 no outlier is dropped
 * and the top {@code density} is kept: mergekit's slice {@code [n_bot:-0]} drops the whole tensor there.
 */
public final class BreadcrumbsMerge implements MergeMethod {
    private final boolean ties;

    /** Where outliers and small entries are ranked: over the whole tensor (mergekit) or within each row (the paper's code). */
    enum Scope implements Variant {
        TENSOR, ROW
    }

    public BreadcrumbsMerge(boolean ties) {
        this.ties = ties;
    }

    @Override
    public String name() {
        return ties ? "breadcrumbs_ties" : "breadcrumbs";
    }

    @Override
    public boolean requiresBase() {
        return true;
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return List.of(ParameterDef.required("weight", 0.5), ParameterDef.DENSITY.withExample(0.5),
                ParameterDef.number("gamma", 0.01)
                .within(new ParameterDef.Range(0, true, 1, false)));
    }

    @Override
    public List<ParameterDef> globalParameters() {
        List<ParameterDef> common = List.of(ParameterDef.flag("normalize", false), ParameterDef.number("lambda", 1.0),
                ParameterDef.variant("breadcrumbs_scope", Scope.TENSOR, Scope.values()), ParameterDef.INT8_MASK,
                ParameterDef.MAGNITUDE_RESCALE, ParameterDef.THRESHOLD_TIES);
        if (!ties) {
            return common;
        }
        List<ParameterDef> all = new java.util.ArrayList<>(common);
        all.add(ParameterDef.ELECTION);
        return all;
    }


    @Override
    public void check(TensorParameters p) throws RecipeException {
        if (!ties) {
            DividedWeights.checkWhenNormalizing(p, name());
        }
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        TaskVectorSum sum = TaskVectorSum.of(p, ties ? p.variant("election", Election.class) : Election.NONE);
        return p.variant("breadcrumbs_scope", Scope.class) == Scope.ROW ? new PerRow(p, sum) : new PerTensor(p, sum);
    }

    /** How many entries of n go as outliers ({@code top}) and how many stay ({@code kept}). */
    record Cut(long top, long kept) {
        static Cut of(long n, double density, double gamma) {
            if (density >= 1) {
                return new Cut(0, n);
            }
            long kept = (long) Math.floor(density * n);
            long top = (long) Math.floor(gamma * n);
            long bottom = n - kept - top;
            return new Cut(bottom < 0 ? top + bottom : top, kept);
        }

        boolean whole(long n) {
            return top == 0 && kept == n;
        }
    }

    /**
     * A breadcrumbs merge of one tensor: each model's task vector thinned to its band of ranks, rescaled to keep its
     * L1 norm when {@code rescale: l1} (mergekit's rescaled_masked_tensor: both norms over the whole tensor, no
     * scaling when either is below 1e-7), then combined.
     */
    private abstract static class Band implements TensorMerge {
        private final TaskVectorSum sum;
        private final boolean rescaled;
        private final float[] scale;
        private boolean scaled;

        Band(TensorParameters p, TaskVectorSum sum) {
            this.sum = sum;
            this.rescaled = p.variant("rescale", Rescale.class) == Rescale.L1;
            this.scale = new float[p.models()];
            java.util.Arrays.fill(scale, 1f);
        }

        /** The passes that choose what each model keeps; empty once chosen. */
        abstract Optional<Pass<?>> selectionPass();

        /** Turns model m's block, in place, into its kept task vector entries times {@code scale}, the rest zero. */
        abstract void thin(Block block, int m, float scale);

        /** The unit of the L1 sums: fixed places of the tensor the executor's blocks are made of. */
        abstract int unit();

        @Override
        public final Optional<Pass<?>> nextPass() {
            Optional<Pass<?>> selection = selectionPass();
            if (selection.isPresent() || !rescaled || scaled) {
                return selection;
            }
            return Optional.of(Pass.of("L1 norms of the task vectors", this::l1Sums, this::rescale));
        }

        /**
         * Per model, Σ|δ| (sums[m]) and Σ|kept δ| (sums[n + m]): each block's kept entries are thinned into copies
         * first. addL1 adds two sums at once; the second of each call, not needed, goes to sums[2n].
         */
        private BlockSums l1Sums() {
            int n = scale.length;
            float[][] kept = new float[n][];
            float[][] zeros = new float[1][0];
            return new BlockSums(2 * n + 1, unit(), (block, from, length, sums) -> {
                if (from == 0) { // BlockSums walks each block from its start: thin the copies once per block
                    for (int m = 0; m < n; m++) {
                        kept[m] = java.util.Arrays.copyOf(block.models()[m], block.length());
                    }
                    Block copy = new Block(block.offset(), block.length(), block.base(), kept);
                    for (int m = 0; m < n; m++) {
                        thin(copy, m, 1f);
                    }
                    if (zeros[0].length < block.length()) {
                        zeros[0] = new float[block.length()];
                    }
                }
                TaskVectors.Thinning none = new TaskVectors.Thinning.None();
                for (int m = 0; m < n; m++) {
                    TaskVectors.addL1(block.models()[m], block.base(), none, from, length, sums, m, 2 * n);
                    TaskVectors.addL1(kept[m], zeros[0], none, from, length, sums, n + m, 2 * n);
                }
            });
        }

        private void rescale(List<BlockSums> parts) {
            int n = scale.length;
            double[] sums = BlockSums.total(parts);
            for (int m = 0; m < n; m++) {
                scale[m] = sums[m] >= 1e-7 && sums[n + m] >= 1e-7 ? (float) (sums[m] / sums[n + m]) : 1f;
            }
            scaled = true;
        }

        @Override
        public final void merge(Block block, float[] out) {
            for (int m = 0; m < scale.length; m++) {
                thin(block, m, scale[m]);
            }
            sum.into(block.models(), block.base(), out, block.length());
        }
    }

    /** Ranks over the whole tensor: per model, the outlier and the keep threshold, in one radix select. */
    private static final class PerTensor extends Band {
        private final Cut[] cuts;
        /** Per model that is cut: the ranks top (when outliers go) and top + kept. */
        private final TopK[] selections;
        private final float[] upper;
        private final float[] lower;
        /** Exactly the ranks between the outliers and the dropped small entries, ties by position. */
        private final boolean exact;
        private final RankWindow window;

        PerTensor(TensorParameters p, TaskVectorSum sum) {
            super(p, sum);
            int n = p.models();
            exact = p.variant(ParameterDef.THRESHOLD_TIES.name(), ThresholdTies.class) == ThresholdTies.POSITION;
            window = new RankWindow(n);
            cuts = new Cut[n];
            selections = new TopK[n];
            upper = new float[n];
            lower = new float[n];
            for (int m = 0; m < n; m++) {
                Cut cut = Cut.of(p.elements(), p.modelNumber(m, "density"), p.modelNumber(m, "gamma"));
                cuts[m] = cut;
                upper[m] = Float.POSITIVE_INFINITY;
                lower[m] = cut.kept() == 0 ? Float.POSITIVE_INFINITY : 0f;
                if (!cut.whole(p.elements()) && cut.kept() > 0) {
                    selections[m] = cut.top() > 0 ? new TopK(cut.top(), cut.top() + cut.kept())
                            : new TopK(cut.kept());
                }
            }
        }

        @Override
        int unit() {
            return BlockSums.CHUNK;
        }

        @Override
        Optional<Pass<?>> selectionPass() {
            Optional<Pass<?>> thresholds = new TaskVectorSelections(selections).nextPass("outlier and keep thresholds",
                    this::thresholdsFound);
            if (thresholds.isPresent()) {
                return thresholds;
            }
            return exact && window.any() && !window.counted() ? Optional.of(window.pass()) : Optional.empty();
        }

        /** The band's edges; where entries tie with one across its rank, a window to keep exactly the band's ranks. */
        private void thresholdsFound() {
            for (int m = 0; m < cuts.length; m++) {
                TopK s = selections[m];
                if (s == null) {
                    continue;
                }
                long top = cuts[m].top();
                long end = top + cuts[m].kept();
                boolean straddled;
                if (top > 0) {
                    upper[m] = s.threshold(0);
                    lower[m] = s.threshold(1);
                    straddled = s.atOrAbove(0) > top || s.atOrAbove(1) > end;
                } else {
                    lower[m] = s.threshold(0);
                    straddled = s.atOrAbove(0) > end;
                }
                if (exact && straddled) {
                    window.set(m, top, end, upper[m], lower[m]);
                }
            }
        }

        /** The entries ranked in the band (or, with threshold_ties: all, those with lower <= |δ| < upper). */
        @Override
        void thin(Block block, int m, float scale) {
            if (window.counted() && window.cuts(m)) {
                window.thin(block, m, scale);
            } else {
                TaskVectors.keepBand(block.models()[m], block.base(), lower[m], upper[m], scale, block.length());
            }
        }
    }

    /** Ranks within each row, by exact counts (ties in index order). */
    private static final class PerRow extends Band {
        private final int columns;
        private final Cut[] cuts;

        PerRow(TensorParameters p, TaskVectorSum sum) {
            super(p, sum);
            this.columns = (int) p.columns();
            cuts = new Cut[p.models()];
            for (int m = 0; m < cuts.length; m++) {
                cuts[m] = Cut.of(columns, p.modelNumber(m, "density"), p.modelNumber(m, "gamma"));
            }
        }

        @Override
        public boolean rowAligned() {
            return true;
        }

        @Override
        Optional<Pass<?>> selectionPass() {
            return Optional.empty();
        }

        @Override
        int unit() {
            return columns;
        }

        @Override
        void thin(Block block, int m, float scale) {
            float[] x = block.models()[m];
            for (int i = 0; i < block.length(); i++) {
                x[i] -= block.base()[i];
            }
            if (!cuts[m].whole(columns)) {
                long bottom = columns - cuts[m].top() - cuts[m].kept();
                RowRanks rows = RowRanks.forThread();
                for (int row = 0; row < block.length(); row += columns) {
                    int[] order = rows.ascendingByMagnitude(x, row, columns);
                    for (int r = 0; r < columns; r++) {
                        if (r < bottom || r >= columns - cuts[m].top()) {
                            x[row + order[r]] = 0f;
                        }
                    }
                }
            }
            if (scale != 1f) {
                for (int i = 0; i < block.length(); i++) {
                    x[i] *= scale;
                }
            }
        }
    }
}
