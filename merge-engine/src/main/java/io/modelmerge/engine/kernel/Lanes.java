package io.modelmerge.engine.kernel;

import jdk.incubator.vector.FloatVector;

/**
 * Reductions across the lanes of a vector in one fixed order. {@code reduceLanes(ADD)} on floats may add the
 * lanes in any order, and the compiled and interpreted Vector API do differ, so a sum taken with it can change
 * with the moment the JIT compiles a loop; sums that feed a merge's statistics are taken here instead.
 */
public final class Lanes {
    private Lanes() {
    }

    /** The lanes of {@code v} added in lane order, in double. */
    public static double sum(FloatVector v) {
        return addInOrder(0, v);
    }

    /** {@code sum} plus the lanes of {@code v}, added one by one in lane order, in double. */
    public static double addInOrder(double sum, FloatVector v) {
        for (float lane : v.toArray()) {
            sum += lane;
        }
        return sum;
    }
}
