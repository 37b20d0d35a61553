package io.modelmerge.engine.exec;

import java.util.Arrays;

/**
 * Plain scalar versions of the methods, written from the papers' and mergekit's descriptions with sorting
 * instead of radix select and doubles instead of vectors: the independent computation the executor's output
 * is checked against.
 */
final class ReferenceMerges {
    private ReferenceMerges() {
    }

    /** mergekit TIES: top-k trim per model, sign of Σ w·t elects, divide by the agreeing weights. */
    static double[] ties(float[] base, float[][] models, double[] weights, double[] density) {
        int n = base.length;
        double[][] trimmed = new double[models.length][n];
        for (int m = 0; m < models.length; m++) {
            double[] magnitudes = new double[n];
            for (int i = 0; i < n; i++) {
                magnitudes[i] = Math.abs((double) (models[m][i] - base[i]));
            }
            double[] sorted = magnitudes.clone();
            Arrays.sort(sorted);
            int k = (int) Math.floor(density[m] * n);
            double threshold = density[m] >= 1 ? -1 : k == 0 ? Double.POSITIVE_INFINITY : sorted[n - k];
            for (int i = 0; i < n; i++) {
                trimmed[m][i] = magnitudes[i] >= threshold ? models[m][i] - base[i] : 0;
            }
        }
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double vote = 0;
            for (int m = 0; m < models.length; m++) {
                vote += weights[m] * trimmed[m][i];
            }
            double sign = vote >= 0 ? 1 : -1;
            double sum = 0;
            double divisor = 0;
            for (int m = 0; m < models.length; m++) {
                double weighted = weights[m] * trimmed[m][i];
                if (Math.signum(weighted) == sign) {
                    sum += weighted;
                    divisor += weights[m];
                }
            }
            out[i] = base[i] + sum / (divisor == 0 ? 1 : divisor);
        }
        return out;
    }
}
