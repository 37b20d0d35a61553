package io.modelmerge.engine.search;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;
import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.EigenDecomposition;
import org.apache.commons.math3.linear.RealMatrix;

/**
 * CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial", default parameters) maximising a score, as ask and
 * tell: {@link #ask()} proposes a generation of λ points that the caller may score in any order or in parallel,
 * {@link #tell} takes their scores in the order proposed. Points are kept within per-coordinate bounds by clipping
 * (the clipped point is the one scored and learnt from). Seeded: the same seed proposes the same points for the
 * same scores.
 */
final class Cmaes {
    private final int n;
    private final int lambda;
    private final int mu;
    private final double[] weights;
    private final double muEff;
    private final double cc;
    private final double cs;
    private final double c1;
    private final double cmu;
    private final double damps;
    private final double chiN;
    private final double[] lower;
    private final double[] upper;
    private final Random random;

    private double[] mean;
    private double sigma;
    private double[][] c;
    private double[][] b;
    private double[] d;
    private double[] pc;
    private double[] ps;
    private int generation;
    private double[][] proposed;

    /**
     * @param start the first mean
     * @param sigma the first step size (one for every coordinate: scale the coordinates to like ranges)
     */
    Cmaes(double[] start, double sigma, double[] lower, double[] upper, long seed) {
        this.n = start.length;
        this.lambda = 4 + (int) (3 * Math.log(n));
        this.mu = lambda / 2;
        double[] w = new double[mu];
        double sum = 0;
        for (int i = 0; i < mu; i++) {
            w[i] = Math.log(mu + 0.5) - Math.log(i + 1);
            sum += w[i];
        }
        double squares = 0;
        for (int i = 0; i < mu; i++) {
            w[i] /= sum;
            squares += w[i] * w[i];
        }
        this.weights = w;
        this.muEff = 1 / squares;
        this.cc = (4 + muEff / n) / (n + 4 + 2 * muEff / n);
        this.cs = (muEff + 2) / (n + muEff + 5);
        this.c1 = 2 / ((n + 1.3) * (n + 1.3) + muEff);
        this.cmu = Math.min(1 - c1, 2 * (muEff - 2 + 1 / muEff) / ((n + 2) * (n + 2) + muEff));
        this.damps = 1 + 2 * Math.max(0, Math.sqrt((muEff - 1) / (n + 1)) - 1) + cs;
        this.chiN = Math.sqrt(n) * (1 - 1.0 / (4 * n) + 1.0 / (21.0 * n * n));
        this.lower = lower.clone();
        this.upper = upper.clone();
        this.random = new Random(seed);
        this.mean = start.clone();
        this.sigma = sigma;
        this.c = identity(n);
        this.b = identity(n);
        this.d = new double[n];
        Arrays.fill(d, 1);
        this.pc = new double[n];
        this.ps = new double[n];
    }

    private static double[][] identity(int n) {
        double[][] m = new double[n][n];
        for (int i = 0; i < n; i++) {
            m[i][i] = 1;
        }
        return m;
    }

    int populationSize() {
        return lambda;
    }

    /** The next generation's λ points, in scaled coordinates mapped back to the bounds. */
    double[][] ask() {
        proposed = new double[lambda][];
        for (int k = 0; k < lambda; k++) {
            double[] z = new double[n];
            for (int i = 0; i < n; i++) {
                z[i] = random.nextGaussian();
            }
            double[] x = new double[n];
            for (int i = 0; i < n; i++) {
                double y = 0;
                for (int j = 0; j < n; j++) {
                    y += b[i][j] * d[j] * z[j];
                }
                x[i] = Math.min(upper[i], Math.max(lower[i], mean[i] + sigma * y));
            }
            proposed[k] = x;
        }
        return Arrays.stream(proposed).map(double[]::clone).toArray(double[][]::new);
    }

    /** The scores of the points {@link #ask()} proposed last, in its order (higher is better). */
    void tell(double[] scores) {
        if (proposed == null || scores.length != lambda) {
            throw new IllegalStateException("tell takes the " + lambda + " scores of the last ask");
        }
        generation++;
        Integer[] order = IntStream.range(0, lambda).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble((Integer k) -> scores[k]).reversed());
        double[] old = mean;
        mean = new double[n];
        for (int i = 0; i < mu; i++) {
            for (int j = 0; j < n; j++) {
                mean[j] += weights[i] * proposed[order[i]][j];
            }
        }
        double[] step = new double[n];
        for (int j = 0; j < n; j++) {
            step[j] = (mean[j] - old[j]) / sigma;
        }
        // C^(-1/2)·step = B·D⁻¹·Bᵀ·step
        double[] bt = new double[n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                bt[i] += b[j][i] * step[j];
            }
            bt[i] /= d[i];
        }
        double psNorm = 0;
        for (int i = 0; i < n; i++) {
            double whitened = 0;
            for (int j = 0; j < n; j++) {
                whitened += b[i][j] * bt[j];
            }
            ps[i] = (1 - cs) * ps[i] + Math.sqrt(cs * (2 - cs) * muEff) * whitened;
            psNorm += ps[i] * ps[i];
        }
        psNorm = Math.sqrt(psNorm);
        boolean hsig = psNorm / Math.sqrt(1 - Math.pow(1 - cs, 2.0 * generation)) / chiN < 1.4 + 2.0 / (n + 1);
        for (int i = 0; i < n; i++) {
            pc[i] = (1 - cc) * pc[i] + (hsig ? Math.sqrt(cc * (2 - cc) * muEff) * step[i] : 0);
        }
        double[][] next = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double rankMu = 0;
                for (int k = 0; k < mu; k++) {
                    double[] x = proposed[order[k]];
                    rankMu += weights[k] * (x[i] - old[i]) / sigma * (x[j] - old[j]) / sigma;
                }
                next[i][j] = (1 - c1 - cmu) * c[i][j]
                        + c1 * (pc[i] * pc[j] + (hsig ? 0 : cc * (2 - cc) * c[i][j]))
                        + cmu * rankMu;
            }
        }
        c = next;
        sigma *= Math.exp(cs / damps * (psNorm / chiN - 1));
        decompose();
        proposed = null;
    }

    /** C = B·D²·Bᵀ. */
    private void decompose() {
        RealMatrix sym = new Array2DRowRealMatrix(c);
        sym = sym.add(sym.transpose()).scalarMultiply(0.5);
        EigenDecomposition e = new EigenDecomposition(sym);
        for (int i = 0; i < n; i++) {
            d[i] = Math.sqrt(Math.max(e.getRealEigenvalue(i), 1e-20));
            for (int j = 0; j < n; j++) {
                b[j][i] = e.getV().getEntry(j, i);
            }
        }
    }
}
