package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.GramProducts;
import io.modelmerge.engine.kernel.WeightedSums;
import java.util.List;
import java.util.Optional;

/**
 * Merges a tensor as base + Σ cᵢ·vᵢ, where vᵢ are the task vectors (θᵢ − θ_base; the models themselves when
 * there is no base) and the coefficients cᵢ are a function of the vᵢ's Gram matrix G = [vᵢ·vⱼ] alone. The
 * spherical methods (model_stock, multislerp, karcher, nuslerp) all have this form: every quantity they
 * compute (norms, angles, means on the sphere, tangent vectors) stays a linear combination of the vᵢ, so one
 * pass gathers G and the merge is a fixed blend, streaming at any tensor size.
 *
 * <p>The Gram matrix is taken over the whole tensor, over each row (row-aligned blocks), or over each column
 * (one accumulator of G per column).
 */
final class GramCombination implements TensorMerge {

    enum Scope { TENSOR, ROW, COLUMN }

    /** The coefficients for the vectors whose Gram matrix is {@code gram} (n×n, symmetric). */
    @FunctionalInterface
    interface Coefficients {
        double[] of(double[][] gram);
    }

    private final int n;
    private final Scope scope;
    private final int columns;
    private final Coefficients coefficients;
    private float[] tensorCoefficients;
    private float[][] columnCoefficients;

    GramCombination(TensorParameters p, Scope scope, Coefficients coefficients) {
        this.n = p.models();
        this.scope = scope;
        this.columns = (int) p.columns();
        this.coefficients = coefficients;
    }

    @Override
    public boolean rowAligned() {
        return scope == Scope.ROW;
    }

    /**
     * One pass gathers G, over the tensor or per column; per row, each row's G is taken as it is merged. Per-column
     * products are summed row after row: in one accumulator, in order, so the sums are the same bits every run.
     */
    @Override
    public Optional<Pass<?>> nextPass() {
        if (scope == Scope.TENSOR && tensorCoefficients == null) {
            return Optional.of(Pass.of("Gram matrix", () -> new BlockSums(n * n, this::addProducts),
                    sums -> tensorCoefficients = toFloats(coefficients.of(gram(BlockSums.total(sums), 0)))));
        }
        if (scope == Scope.COLUMN && columnCoefficients == null) {
            return Optional.of(Pass.of("Gram matrix per column", ColumnProducts::new, this::columnCoefficients)
                    .inOrder());
        }
        return Optional.empty();
    }

    private void columnCoefficients(List<ColumnProducts> accumulators) {
        double[] total = new double[columns * n * n];
        for (ColumnProducts part : accumulators) {
            for (int i = 0; i < total.length; i++) {
                total[i] += part.products[i];
            }
        }
        columnCoefficients = new float[columns][];
        for (int c = 0; c < columns; c++) {
            columnCoefficients[c] = toFloats(coefficients.of(gram(total, c * n * n)));
        }
    }

    /** Per column, the products vᵢ·vⱼ over the rows, in row order. */
    private final class ColumnProducts implements Accumulator {
        final double[] products = new double[columns * n * n];

        @Override
        public void add(Block block) {
            for (int i = 0; i < block.length(); i++) {
                int at = (int) ((block.offset() + i) % columns) * n * n;
                for (int a = 0; a < n; a++) {
                    double va = vector(block, a, i);
                    for (int b = a; b < n; b++) {
                        products[at + a * n + b] += va * vector(block, b, i);
                    }
                }
            }
        }
    }

    private double[][] gram(double[] upper, int at) {
        double[][] g = new double[n][n];
        for (int a = 0; a < n; a++) {
            for (int b = a; b < n; b++) {
                g[a][b] = upper[at + a * n + b];
                g[b][a] = g[a][b];
            }
        }
        return g;
    }

    private void addProducts(Block block, int from, int length, double[] sums) {
        GramProducts.add(block.models(), n, block.base(), from, length, sums);
    }

    private static double vector(Block block, int model, int i) {
        return GramProducts.vector(block.models()[model], block.base(), i);
    }

    private static float[] toFloats(double[] values) {
        float[] f = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            f[i] = (float) values[i];
        }
        return f;
    }

    @Override
    public void merge(Block block, float[] out) {
        switch (scope) {
            case TENSOR -> blend(block, 0, block.length(), tensorCoefficients, out);
            case ROW -> {
                for (int row = 0; row < block.length(); row += columns) {
                    double[] sums = new double[n * n];
                    addProducts(block, row, columns, sums);
                    blend(block, row, columns, toFloats(coefficients.of(gram(sums, 0))), out);
                }
            }
            case COLUMN -> {
                for (int i = 0; i < block.length(); i++) {
                    blend(block, i, 1, columnCoefficients[(int) ((block.offset() + i) % columns)], out);
                }
            }
        }
    }

    /** out = base + Σ cₘ(xₘ − base) = (1 − Σ cₘ)·base + Σ cₘxₘ (Σ cₘxₘ without a base), over [from, from + length). */
    private void blend(Block block, int from, int length, float[] c, float[] out) {
        float keep = 1;
        for (float cm : c) {
            keep -= cm;
        }
        WeightedSums.blend(block.models(), n, c, block.base(), keep, out, from, length);
    }

    /** vᵀ G w for coefficient vectors v and w. */
    static double product(double[][] gram, double[] v, double[] w) {
        double s = 0;
        for (int a = 0; a < v.length; a++) {
            for (int b = 0; b < w.length; b++) {
                s += v[a] * gram[a][b] * w[b];
            }
        }
        return s;
    }
}
