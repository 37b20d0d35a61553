package io.modelmerge.engine.method;

import java.util.List;

/**
 * {@code model_stock} (Jang et al., Model Stock): the average of the fine-tunes pulled towards the base by how
 * much their task vectors agree. With cos θ the mean pairwise cosine of the task vectors (each clamped to
 * [−1, 1], norms' product floored at 1e-6, as mergekit), t = N·cos θ / (1 + (N − 1)·cos θ) and the result is
 * t·mean(θᵢ) + (1 − t)·θ_base. {@code filter_wise: true} takes cos θ per row instead of per tensor. Needs a
 * base and at least two fine-tunes; identical fine-tunes (cos θ = 1) return themselves.
 *
 * <p>One departure: a negative mean cosine is taken as 0, which returns the base. The paper's derivation
 * assumes fine-tunes at an acute angle; mergekit applies the formula as is, which extrapolates away from the
 * fine-tunes for cos θ < 0 and divides by zero at cos θ = −1/(N − 1) (two one-element task vectors of
 * opposite sign, e.g. a bias, give ±∞).
 */
public final class ModelStockMerge implements MergeMethod {

    @Override
    public String name() {
        return "model_stock";
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
        return List.of(ParameterDef.flag("filter_wise", false));
    }

    @Override
    public int minModels() {
        return 2;
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        return new GramCombination(p, p.flag("filter_wise") ? GramCombination.Scope.ROW : GramCombination.Scope.TENSOR,
                ModelStockMerge::coefficients);
    }

    /** c = t/N for every task vector: base + Σ (t/N)·τᵢ = t·mean(θᵢ) + (1 − t)·θ_base. */
    static double[] coefficients(double[][] gram) {
        int n = gram.length;
        double cos = 0;
        int pairs = 0;
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                double norms = Math.max(Math.sqrt(gram[i][i]) * Math.sqrt(gram[j][j]), 1e-6);
                cos += Math.clamp(gram[i][j] / norms, -1.0, 1.0);
                pairs++;
            }
        }
        cos = Math.max(0, cos / pairs);
        double t = n * cos / (1 + (n - 1) * cos);
        double[] c = new double[n];
        java.util.Arrays.fill(c, t / n);
        return c;
    }
}
