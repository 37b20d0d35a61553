package io.modelmerge.engine.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The products vₐ·v_b of task vectors vₘ = x[m] − base (the models themselves without a base), a <= b: the Gram
 * matrix's upper triangle, summed over a run of elements.
 */
public final class GramProducts {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    /** Products are summed in F32 lanes over runs this long, then added up in double. */
    private static final int RUN = 1024;

    private GramProducts() {
    }

    /**
     * sums[a·n + b] += Σ vₐ·v_b over elements [from, from + length), for a <= b < n: per run of {@link #RUN}
     * elements from {@code from}, the full vectors' products fused in F32 lanes and the lanes added in order in
     * double; the run's last few elements (fewer than a vector) are taken in double, each vₘ = (double) x − base.
     */
    public static void add(float[][] x, int n, float[] base, int from, int length, double[] sums) {
        for (int a = 0; a < n; a++) {
            for (int b = a; b < n; b++) {
                double total = 0;
                for (int run = from; run < from + length; run += RUN) {
                    int end = Math.min(run + RUN, from + length);
                    FloatVector acc = FloatVector.zero(FS);
                    int i = run;
                    for (int bound = run + FS.loopBound(end - run); i < bound; i += FS.length()) {
                        FloatVector va = FloatVector.fromArray(FS, x[a], i);
                        FloatVector vb = FloatVector.fromArray(FS, x[b], i);
                        if (base != null) {
                            FloatVector vbase = FloatVector.fromArray(FS, base, i);
                            va = va.sub(vbase);
                            vb = vb.sub(vbase);
                        }
                        acc = va.fma(vb, acc);
                    }
                    total += Lanes.sum(acc);
                    for (; i < end; i++) {
                        total += vector(x[a], base, i) * vector(x[b], base, i);
                    }
                }
                sums[a * n + b] += total;
            }
        }
    }

    /** vₘ at element i, in double. */
    public static double vector(float[] x, float[] base, int i) {
        return base == null ? x[i] : (double) x[i] - base[i];
    }
}
