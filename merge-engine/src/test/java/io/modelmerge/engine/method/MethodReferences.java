package io.modelmerge.engine.method;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * The published algorithms written out the direct way, on whole arrays in double, with sorts where the engine
 * streams and selects: the second computation the streaming methods are checked against. Each follows the
 * reference code named in its comment, step by step.
 */
final class MethodReferences {
    private MethodReferences() {
    }

    static double[] delta(float[] model, float[] base) {
        double[] d = new double[model.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = (double) model[i] - base[i];
        }
        return d;
    }

    /** Indices by ascending |v|. */
    static Integer[] ascending(double[] v) {
        Integer[] order = IntStream.range(0, v.length).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble(i -> Math.abs(v[i])));
        return order;
    }

    /** mergekit's magnitude_outliers with the ⌊γn⌋ = 0 case kept: indices[n_bot : n − n_top] survive. */
    static double[] breadcrumbs(double[] d, double density, double gamma) {
        int n = d.length;
        int kept = (int) Math.floor(density * n);
        int top = (int) Math.floor(gamma * n);
        int bottom = n - kept - top;
        if (bottom < 0) {
            top += bottom;
            bottom = 0;
        }
        Integer[] order = ascending(d);
        double[] out = new double[n];
        for (int r = bottom; r < n - top; r++) {
            out[order[r]] = d[order[r]];
        }
        return out;
    }

    /** mergekit's model_stock.py on flattened tensors. */
    static double[] modelStock(float[] base, float[][] models) {
        int n = models.length;
        double cos = 0;
        int pairs = 0;
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                double[] a = delta(models[i], base);
                double[] b = delta(models[j], base);
                cos += Math.clamp(dot(a, b) / Math.max(norm(a) * norm(b), 1e-6), -1, 1);
                pairs++;
            }
        }
        cos = Math.max(0, cos / pairs); // the one departure from mergekit, see ModelStockMerge
        double t = n * cos / (1 + (n - 1) * cos);
        double[] out = new double[base.length];
        for (int e = 0; e < out.length; e++) {
            double avg = 0;
            for (float[] m : models) {
                avg += m[e];
            }
            out[e] = t * avg / n + (1 - t) * base[e];
        }
        return out;
    }

    /** mergekit's multislerp.py, vector by vector. */
    static double[] multislerp(float[] base, float[][] models, double[] weights) {
        int n = models.length;
        double sum = Arrays.stream(weights).sum();
        double[] w = Arrays.stream(weights).map(x -> x / sum).toArray();
        double[][] v = new double[n][];
        double[] norms = new double[n];
        double[][] unit = new double[n][];
        for (int i = 0; i < n; i++) {
            v[i] = base == null ? delta(models[i], new float[models[i].length]) : delta(models[i], base);
            norms[i] = norm(v[i]);
            unit[i] = scaled(v[i], 1 / (norms[i] + 1e-8));
        }
        double[] mean = new double[v[0].length];
        for (int i = 0; i < n; i++) {
            mean = added(mean, scaled(unit[i], w[i]));
        }
        mean = scaled(mean, 1 / norm(mean));
        double[] tangent = new double[mean.length];
        for (int i = 0; i < n; i++) {
            tangent = added(tangent, scaled(added(unit[i], scaled(mean, -dot(unit[i], mean))), w[i]));
        }
        double tn = norm(tangent) + 1e-8;
        double avgNorm = 0;
        for (int i = 0; i < n; i++) {
            avgNorm += norms[i] * w[i];
        }
        double[] out = scaled(added(scaled(mean, Math.cos(tn)), scaled(tangent, Math.sin(tn) / tn)), avgNorm);
        return base == null ? out : added(out, delta(base, new float[base.length]));
    }

    /** mergekit's karcher_merge_tensors with the weights as alphas. */
    static double[] karcher(float[][] models, double[] weights, int maxIter, double tol) {
        int n = models.length;
        double sum = Arrays.stream(weights).sum();
        double[] alpha = Arrays.stream(weights).map(x -> x / sum).toArray();
        double[][] units = new double[n][];
        double[] norms = new double[n];
        for (int i = 0; i < n; i++) {
            double[] x = delta(models[i], new float[models[i].length]);
            norms[i] = norm(x);
            units[i] = scaled(x, 1 / norms[i]);
        }
        double[] u = new double[units[0].length];
        for (int i = 0; i < n; i++) {
            u = added(u, scaled(units[i], alpha[i]));
        }
        u = scaled(u, 1 / norm(u));
        for (int iteration = 0; iteration < maxIter; iteration++) {
            double[] step = new double[u.length];
            for (int i = 0; i < n; i++) {
                double c = Math.clamp(dot(u, units[i]), -1, 1);
                double theta = Math.acos(c);
                if (theta < tol) {
                    continue;
                }
                step = added(step, scaled(added(units[i], scaled(u, -c)), alpha[i] * theta / Math.sin(theta)));
            }
            double normStep = norm(step);
            if (normStep < tol) {
                break;
            }
            u = added(scaled(u, Math.cos(normStep)), scaled(step, Math.sin(normStep) / normStep));
            u = scaled(u, 1 / norm(u));
        }
        double s = 0;
        for (int i = 0; i < n; i++) {
            s += alpha[i] * norms[i];
        }
        return scaled(u, s);
    }

    /** The authors' PCB_merge (pcb-merging, merging_methods.py) on one tensor: sort-based clamp and normalize. */
    static double[] pcb(float[] base, float[][] models, double ratio, double lambda, boolean referenceClip) {
        int n = models.length;
        int d = base.length;
        double[][] tau = new double[n][];
        double[][] clipped = new double[n][d];
        double[][] beta = new double[n][d];
        for (int m = 0; m < n; m++) {
            tau[m] = delta(models[m], base);
        }
        for (int m = 0; m < n; m++) {
            double[] abs = Arrays.stream(tau[m]).map(Math::abs).sorted().toArray();
            int lowIndex = (int) (d * 0.0001);
            int highIndex = referenceClip ? (int) (d * (1 - 0.0001) - 1) : d - 1 - lowIndex;
            double lo = abs[lowIndex];
            double hi = abs[highIndex];
            for (int i = 0; i < d; i++) {
                double c = Math.clamp(Math.abs(tau[m][i]), lo, hi);
                clipped[m][i] = Math.signum(tau[m][i]) * c;
                double sumAll = 0;
                for (int j = 0; j < n; j++) {
                    sumAll += tau[j][i];
                }
                double norm = hi > lo ? (c - lo) / (hi - lo) : 0;
                beta[m][i] = Math.exp(n * norm * norm) * Math.tanh(tau[m][i] * sumAll);
            }
        }
        double[][] scale = new double[n][d];
        for (int m = 0; m < n; m++) {
            double[] sorted = beta[m].clone();
            Arrays.sort(sorted);
            double q = sorted[(int) (d * (1 - ratio))];
            double max = sorted[d - 1];
            for (int i = 0; i < d; i++) {
                double kept = Math.max(beta[m][i], q);
                scale[m][i] = max > q ? (kept - q) / (max - q) : (beta[m][i] >= q ? 1 : 0);
            }
        }
        double[] out = new double[d];
        for (int i = 0; i < d; i++) {
            double mixed = 0;
            double scales = 0;
            for (int m = 0; m < n; m++) {
                mixed += scale[m][i] * clipped[m][i];
                scales += scale[m][i];
            }
            out[i] = base[i] + lambda * mixed / Math.max(scales, 1e-12);
        }
        return out;
    }

    /** mergekit's sce_merge. */
    static double[] sce(float[] base, float[][] models, double topk) {
        int n = models.length;
        int d = base.length;
        double[][] tau = new double[n][];
        for (int m = 0; m < n; m++) {
            tau[m] = delta(models[m], base);
        }
        if (topk < 1) {
            double[] var = new double[d];
            for (int i = 0; i < d; i++) {
                double mean = 0;
                for (int m = 0; m < n; m++) {
                    mean += tau[m][i];
                }
                mean /= n;
                for (int m = 0; m < n; m++) {
                    var[i] += (tau[m][i] - mean) * (tau[m][i] - mean) / n;
                }
            }
            long nonzero = Arrays.stream(var).filter(v -> v != 0).count();
            int k = (int) (nonzero * topk);
            Integer[] order = ascending(var);
            boolean[] keep = new boolean[d];
            for (int r = d - k; r < d; r++) {
                keep[order[r]] = true;
            }
            for (int m = 0; m < n; m++) {
                for (int i = 0; i < d; i++) {
                    tau[m][i] = keep[i] ? tau[m][i] : 0;
                }
            }
        }
        double[] w = new double[n];
        double total = 0;
        for (int m = 0; m < n; m++) {
            w[m] = dot(tau[m], tau[m]) / d;
            total += w[m];
        }
        for (int m = 0; m < n; m++) {
            w[m] = Math.abs(total) < 1e-6 ? 1.0 / n : w[m] / total;
        }
        double[] out = new double[d];
        for (int i = 0; i < d; i++) {
            double vote = 0;
            for (int m = 0; m < n; m++) {
                vote += tau[m][i];
            }
            double majority = vote >= 0 ? 1 : -1;
            double mixed = 0;
            double divisor = 0;
            for (int m = 0; m < n; m++) {
                if (Math.signum(tau[m][i]) == majority) {
                    mixed += w[m] * tau[m][i];
                    divisor += w[m];
                }
            }
            out[i] = base[i] + mixed / Math.max(divisor, 1e-6);
        }
        return out;
    }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    static double norm(double[] a) {
        return Math.sqrt(dot(a, a));
    }

    static double[] scaled(double[] a, double f) {
        return Arrays.stream(a).map(x -> x * f).toArray();
    }

    static double[] added(double[] a, double[] b) {
        double[] out = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i] + b[i];
        }
        return out;
    }

    static float[] random(java.util.Random random, int n, double scale) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (random.nextGaussian() * scale);
        }
        return out;
    }

    static void assertClose(double[] expected, float[] actual, double tolerance) {
        for (int i = 0; i < expected.length; i++) {
            org.junit.jupiter.api.Assertions.assertEquals(expected[i], actual[i], tolerance, "entry " + i);
        }
    }

    /** A base and {@code n} fine-tunes of it: base ~ N(0, 1), task vectors ~ N(0, scales[m]). */
    static float[][] baseAndFineTunes(java.util.Random random, int n, double... scales) {
        float[][] out = new float[scales.length + 1][];
        out[0] = random(random, n, 1);
        for (int m = 0; m < scales.length; m++) {
            out[m + 1] = MethodHarness.plus(out[0], random(random, n, scales[m]));
        }
        return out;
    }
}
