package io.modelmerge.engine.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The last elements of an array that fill less than a vector, copied into one zero-padded vector's worth: an
 * elementwise kernel runs its one unmasked loop over them as over the rest (the padding's results are dropped),
 * so the loop is written once and stays free of masks and of calls per vector.
 */
final class Tail {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;

    private Tail() {
    }

    /** Where the tail of an array of {@code length} elements starts: its full vectors end there. */
    static int start(int length) {
        return FS.loopBound(length);
    }

    /** The elements [from, length) of {@code x}, zero-padded to one vector; null stays null. */
    static float[] padded(float[] x, int from, int length) {
        if (x == null) {
            return null;
        }
        float[] tail = new float[FS.length()];
        System.arraycopy(x, from, tail, 0, length - from);
        return tail;
    }

    /** Each array's tail, padded. */
    static float[][] padded(float[][] x, int count, int from, int length) {
        float[][] tails = new float[count][];
        for (int m = 0; m < count; m++) {
            tails[m] = padded(x[m], from, length);
        }
        return tails;
    }
}
