package io.modelmerge.engine.method;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;

/**
 * {@code multislerp} (mergekit's multislerp.py, barycentric interpolation on the hypersphere): the vectors
 * (task vectors when a base is named, else the models) are normalised, their weighted mean is taken as the
 * tangent point, the unit vectors are projected onto its tangent space, averaged there with the weights and
 * mapped back with the exponential map, and the result is scaled by the weighted mean of the vectors' norms.
 * {@code normalize_weights} (default true) divides the weights by their sum. If the weighted mean of the unit
 * vectors vanishes (e.g. two antipodal tensors with equal weights), two models are interpolated linearly, as
 * mergekit does, and more are refused, naming the tensor.
 */
public final class MultiSlerpMerge implements MergeMethod {

    @Override
    public String name() {
        return "multislerp";
    }

    @Override
    public boolean requiresBase() {
        return false;
    }

    @Override
    public boolean usesBase() {
        return true;
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return List.of(ParameterDef.required("weight", 0.5));
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of(ParameterDef.flag("normalize_weights", true),
                ParameterDef.number("eps", 1e-8).within(new ParameterDef.Range(0, true, 1, false)));
    }

    @Override
    public void check(TensorParameters p) throws RecipeException {
        double sum = 0;
        for (double w : p.modelNumbers("weight")) {
            sum += w;
        }
        if (p.flag("normalize_weights") && Math.abs(sum) < 1e-8) {
            throw new RecipeException("weights sum to zero for tensor '" + p.tensor()
                    + "', and multislerp divides by their sum (set normalize_weights: false or change the weights)");
        }
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        double[] weights = p.modelNumbers("weight");
        if (p.flag("normalize_weights")) {
            double sum = java.util.Arrays.stream(weights).sum();
            for (int m = 0; m < weights.length; m++) {
                weights[m] /= sum;
            }
        }
        return new GramCombination(p, GramCombination.Scope.TENSOR, gram -> coefficients(gram, weights, p.number("eps"), p.tensor()));
    }

    /** The blend's coefficients; {@code eps} steadies the norms' divisions, as mergekit's {@code eps}. */
    static double[] coefficients(double[][] gram, double[] w, double eps, String tensor) {
        int n = w.length;
        if (n == 1) {
            return new double[]{1};
        }
        double[] norms = new double[n];
        double[] unit = new double[n]; // uᵢ = vᵢ · unit[i]
        double[] mean = new double[n]; // Σ wᵢuᵢ, as coefficients of the vᵢ
        for (int i = 0; i < n; i++) {
            norms[i] = Math.sqrt(Math.max(gram[i][i], 0));
            unit[i] = 1 / (norms[i] + eps);
            mean[i] = w[i] * unit[i];
        }
        double meanNorm = Math.sqrt(Math.max(GramCombination.product(gram, mean, mean), 0));
        if (meanNorm < eps) {
            if (n == 2) {
                return w.clone();
            }
            throw new IllegalArgumentException("multislerp: the weighted mean of the normalised tensors '" + tensor
                    + "' is zero (antipodal tensors whose weights balance out); change the weights");
        }
        for (int i = 0; i < n; i++) {
            mean[i] /= meanNorm;
        }
        double[] gMean = multiply(gram, mean);
        double dotSum = 0; // Σ wᵢ (uᵢ·mean)
        for (int i = 0; i < n; i++) {
            dotSum += w[i] * unit[i] * gMean[i];
        }
        double[] tangent = new double[n]; // Σ wᵢ (uᵢ − (uᵢ·mean) mean)
        for (int i = 0; i < n; i++) {
            tangent[i] = w[i] * unit[i] - dotSum * mean[i];
        }
        double tangentNorm = Math.sqrt(Math.max(GramCombination.product(gram, tangent, tangent), 0)) + eps;
        double averageNorm = 0;
        for (int i = 0; i < n; i++) {
            averageNorm += norms[i] * w[i];
        }
        double[] c = new double[n];
        for (int i = 0; i < n; i++) {
            c[i] = averageNorm * (StrictMath.cos(tangentNorm) * mean[i] + StrictMath.sin(tangentNorm) / tangentNorm * tangent[i]);
        }
        return c;
    }

    static double[] multiply(double[][] gram, double[] v) {
        double[] out = new double[v.length];
        for (int a = 0; a < v.length; a++) {
            for (int b = 0; b < v.length; b++) {
                out[a] += gram[a][b] * v[b];
            }
        }
        return out;
    }
}
