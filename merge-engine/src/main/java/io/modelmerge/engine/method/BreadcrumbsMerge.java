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
 * thresholds found by radix select (entries equal to the outlier threshold go with the outliers);
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
                // mergekit's rescale; only its default (none) is implemented here, so l1 is refused, not ignored
                ParameterDef.variant("rescale", Rescale.NONE, Rescale.NONE));
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

    /** Ranks over the whole tensor: per model, the outlier and the keep threshold, in one radix select. */
    private static final class PerTensor implements TensorMerge {
        private final TaskVectorSum sum;
        private final Cut[] cuts;
        /** Per model that is cut: the ranks top (when outliers go) and top + kept. */
        private final TopK[] selections;
        private final float[] upper;
        private final float[] lower;

        PerTensor(TensorParameters p, TaskVectorSum sum) {
            this.sum = sum;
            int n = p.models();
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
        public Optional<Pass<?>> nextPass() {
            return new TaskVectorSelections(selections).nextPass("outlier and keep thresholds", () -> {
                for (int m = 0; m < cuts.length; m++) {
                    if (selections[m] != null && cuts[m].top() > 0) {
                        upper[m] = selections[m].threshold(0);
                        lower[m] = selections[m].threshold(1);
                    } else if (selections[m] != null) {
                        lower[m] = selections[m].threshold(0);
                    }
                }
            });
        }

        /** Each task vector, in place, keeps the entries with lower <= |δ| < upper. */
        @Override
        public void merge(Block block, float[] out) {
            int length = block.length();
            for (int m = 0; m < cuts.length; m++) {
                TaskVectors.keepBand(block.models()[m], block.base(), lower[m], upper[m], length);
            }
            sum.into(block.models(), block.base(), out, length);
        }
    }

    /** Ranks within each row, by exact counts (ties in index order). */
    private static final class PerRow implements TensorMerge {
        private final TaskVectorSum sum;
        private final int columns;
        private final Cut[] cuts;

        PerRow(TensorParameters p, TaskVectorSum sum) {
            this.sum = sum;
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
        public void merge(Block block, float[] out) {
            for (int m = 0; m < cuts.length; m++) {
                float[] x = block.models()[m];
                for (int i = 0; i < block.length(); i++) {
                    x[i] -= block.base()[i];
                }
                if (cuts[m].whole(columns)) {
                    continue;
                }
                long bottom = columns - cuts[m].top() - cuts[m].kept();
                for (int row = 0; row < block.length(); row += columns) {
                    int[] order = RowRanks.ascendingByMagnitude(x, row, columns);
                    for (int r = 0; r < columns; r++) {
                        if (r < bottom || r >= columns - cuts[m].top()) {
                            x[row + order[r]] = 0f;
                        }
                    }
                }
            }
            sum.into(block.models(), block.base(), out, block.length());
        }
    }
}
