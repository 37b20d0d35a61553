package io.modelmerge.engine.method;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.Arrays;
import java.util.List;

/**
 * {@code karcher}: the weighted Riemannian (Karcher) mean of the models' directions on the unit sphere, scaled
 * by the weighted mean of their norms, as mergekit's karcher.py iterates it (start at the normalised weighted
 * mean of the unit vectors; step along the weighted mean of the log maps θᵢ/sin θᵢ·(uᵢ − cos θᵢ·u) until the
 * step is below {@code tol} or {@code max_iter} steps; vectors of norm ≤ tol take no part in the direction).
 * mergekit weighs every model 1/N whatever the recipe says; here the per-model {@code weight} (default 1) is
 * honoured, normalised to sum 1. A base model, if named, is merged like any other model.
 */
public final class KarcherMerge implements MergeMethod {

    @Override
    public String name() {
        return "karcher";
    }

    @Override
    public boolean requiresBase() {
        return false;
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return List.of(ParameterDef.number("weight", 1.0));
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of(ParameterDef.number("max_iter", 10), ParameterDef.number("tol", 1e-5));
    }

    @Override
    public void check(TensorParameters p) throws RecipeException {
        for (double w : p.modelNumbers("weight")) {
            if (w < 0) {
                throw new RecipeException("karcher weight " + w + " for tensor '"
                        + p.tensor() + "' is negative; a Karcher mean takes weights >= 0");
            }
        }
        if (Arrays.stream(p.modelNumbers("weight")).sum() <= 0) {
            throw new RecipeException("karcher weights for tensor '" + p.tensor()
                    + "' sum to zero");
        }
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        double[] weights = p.modelNumbers("weight");
        int maxIter = (int) p.number("max_iter");
        double tol = p.number("tol");
        return new GramCombination(p, GramCombination.Scope.TENSOR, gram -> coefficients(gram, weights, maxIter, tol));
    }

    static double[] coefficients(double[][] gram, double[] weights, int maxIter, double tol) {
        int n = weights.length;
        double total = Arrays.stream(weights).sum();
        double[] alpha = new double[n];
        double[] norms = new double[n];
        double[] unit = new double[n];
        double validSum = 0;
        for (int i = 0; i < n; i++) {
            alpha[i] = weights[i] / total;
            norms[i] = Math.sqrt(Math.max(gram[i][i], 0));
            unit[i] = norms[i] > 0 ? 1 / norms[i] : 0;
            if (norms[i] > tol) {
                validSum += alpha[i];
            }
        }
        double[] c = new double[n];
        if (validSum == 0) {
            return c; // every model is (nearly) zero here: so is the mean
        }
        double[] a = new double[n]; // weights over the valid vectors, summing to 1
        for (int i = 0; i < n; i++) {
            a[i] = norms[i] > tol ? alpha[i] / validSum : 0;
        }
        double[] u = new double[n];
        for (int i = 0; i < n; i++) {
            u[i] = a[i] * unit[i];
        }
        double normU = norm(gram, u);
        if (normU < tol) {
            u = new double[n];
            for (int i = 0; i < n; i++) {
                if (a[i] > 0) {
                    u[i] = unit[i];
                    break;
                }
            }
        } else {
            scale(u, 1 / normU);
        }
        for (int iteration = 0; iteration < maxIter; iteration++) {
            double[] gu = MultiSlerpMerge.multiply(gram, u);
            double[] step = new double[n];
            for (int i = 0; i < n; i++) {
                if (a[i] == 0) {
                    continue;
                }
                double dot = Math.clamp(unit[i] * gu[i], -1.0, 1.0);
                double theta = StrictMath.acos(dot);
                if (theta < tol) {
                    continue;
                }
                double f = a[i] * theta / StrictMath.sin(theta);
                step[i] += f * unit[i];
                for (int j = 0; j < n; j++) {
                    step[j] -= f * dot * u[j];
                }
            }
            double normStep = norm(gram, step);
            if (normStep < tol) {
                break;
            }
            for (int j = 0; j < n; j++) {
                u[j] = StrictMath.cos(normStep) * u[j] + StrictMath.sin(normStep) * step[j] / normStep;
            }
            double length = norm(gram, u);
            if (length > tol) {
                scale(u, 1 / length);
            }
        }
        double s = 0;
        for (int i = 0; i < n; i++) {
            s += alpha[i] * norms[i];
        }
        for (int i = 0; i < n; i++) {
            c[i] = s * u[i];
        }
        return c;
    }

    private static double norm(double[][] gram, double[] v) {
        return Math.sqrt(Math.max(GramCombination.product(gram, v, v), 0));
    }

    private static void scale(double[] v, double factor) {
        for (int i = 0; i < v.length; i++) {
            v[i] *= factor;
        }
    }
}
