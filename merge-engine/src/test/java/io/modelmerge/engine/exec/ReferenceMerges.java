package io.modelmerge.engine.exec;

import java.util.Arrays;
import java.util.List;

/**
 * Plain scalar versions of the methods, written from the papers' and mergekit's descriptions with sorting
 * instead of radix select and doubles instead of vectors: the independent computation the executor's output
 * is checked against.
 */
public final class ReferenceMerges {
    private ReferenceMerges() {
    }

    /** mergekit TIES: top-k trim per model, sign of Σ w·t elects, divide by the agreeing weights. */
    static double[] ties(float[] base, float[][] models, double[] weights, double[] density) {
        double[] thresholds = new double[models.length];
        for (int m = 0; m < models.length; m++) {
            thresholds[m] = topKThreshold(List.of(base), List.of(models[m]), density[m]);
        }
        return tiesWithThresholds(base, models, weights, thresholds);
    }

    /** The smallest |δ| kept when the top density of |model − base| over all given tensors is kept, by sorting. */
    static double topKThreshold(List<float[]> bases, List<float[]> models, double density) {
        int n = bases.stream().mapToInt(b -> b.length).sum();
        double[] magnitudes = new double[n];
        int at = 0;
        for (int t = 0; t < bases.size(); t++) {
            for (int i = 0; i < bases.get(t).length; i++) {
                magnitudes[at++] = Math.abs((double) (models.get(t)[i] - bases.get(t)[i]));
            }
        }
        Arrays.sort(magnitudes);
        int k = (int) Math.floor(density * n);
        return density >= 1 ? -1 : k == 0 ? Double.POSITIVE_INFINITY : magnitudes[n - k];
    }

    /** TIES with given per-model |δ| thresholds. */
    static double[] tiesWithThresholds(float[] base, float[][] models, double[] weights, double[] thresholds) {
        int n = base.length;
        double[][] trimmed = new double[models.length][n];
        for (int m = 0; m < models.length; m++) {
            for (int i = 0; i < n; i++) {
                double magnitude = Math.abs((double) (models[m][i] - base[i]));
                trimmed[m][i] = magnitude >= thresholds[m] ? models[m][i] - base[i] : 0;
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

    /**
     * mergekit's slerp from the base {@code a} (t = 0) to {@code b} (t = 1), written out in double: the angle of
     * the two whole tensors, and a linear blend where |cos θ| > 0.9995.
     */
    public static float[] slerp(float[] a, float[] b, double t) {
        double dot = 0;
        double na = 0;
        double nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += (double) a[i] * b[i];
            na += (double) a[i] * a[i];
            nb += (double) b[i] * b[i];
        }
        double cos = dot / Math.sqrt(na * nb);
        double theta = Math.acos(cos);
        float[] out = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = Math.abs(cos) > 0.9995 ? (float) ((1 - t) * a[i] + t * b[i])
                    : (float) ((Math.sin((1 - t) * theta) * a[i] + Math.sin(t * theta) * b[i]) / Math.sin(theta));
        }
        return out;
    }
}
