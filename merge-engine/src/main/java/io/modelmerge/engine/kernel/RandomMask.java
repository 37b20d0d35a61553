package io.modelmerge.engine.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Bernoulli masks that depend on (seed, element index) alone: murmur3's finaliser of the index, mixed with the
 * seed, kept when its top 24 bits fall under {@code density · 2^24}. So a random drop (DARE, DELLA) gives the
 * same result at any block size, thread count or order.
 */
public final class RandomMask {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> IS = IntVector.SPECIES_PREFERRED;

    private RandomMask() {
    }

    /** A tensor's seed: the job's, mixed with the FNV-1a hash of the tensor's name. */
    public static long tensorSeed(long jobSeed, String tensor) {
        long hash = 0xcbf29ce484222325L;
        for (byte b : tensor.getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
            hash ^= b & 0xff;
            hash *= 0x100000001b3L;
        }
        return jobSeed ^ hash;
    }

    /** The seed of model {@code m}'s mask in a tensor whose seed is {@code tensorSeed} (splitmix64's mixer). */
    public static int seed(long tensorSeed, int m) {
        long z = tensorSeed + 0x9E3779B97F4A7C15L * (m + 1);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return (int) (z ^ (z >>> 31));
    }

    /** The keep threshold of a mask keeping a {@code density} fraction. */
    public static int threshold(double density) {
        return (int) Math.round(density * (1 << 24));
    }

    /** Whether element {@code index} survives the mask with {@code seed} and {@code threshold24}. */
    public static boolean keeps(int seed, long index, int threshold24) {
        int h = ((int) index * 0x9E3779B1) ^ seed ^ (int) (index >>> 32) * 0x85EBCA6B;
        h ^= h >>> 16;
        h *= 0x85EBCA6B;
        h ^= h >>> 13;
        h *= 0xC2B2AE35;
        h ^= h >>> 16;
        return (h >>> 8) < threshold24;
    }

    /** How many of elements [from, from + length) survive the mask. */
    public static long count(int seed, long from, long length, int threshold24) {
        int[] draws = drawBuffer();
        long kept = 0;
        long i = from;
        for (long bound = from + length - length % FS.length(); i < bound; i += FS.length()) {
            kept += Long.bitCount(keepBits(seed, i, threshold24, draws));
        }
        for (; i < from + length; i++) {
            kept += keeps(seed, i, threshold24) ? 1 : 0;
        }
        return kept;
    }

    /** Room for one vector of draws, for {@link #keepBits} and {@link #draws}. */
    static int[] drawBuffer() {
        return new int[IS.length()];
    }

    /**
     * The lanes of elements [index, index + lanes) that survive, lane j at bit j: {@link #keeps}, a vector at a
     * time. The draws pass through {@code draws} ({@link #drawBuffer}) and the lanes come back as a {@code long},
     * so no vector crosses the call: C2 boxes one that does wherever it leaves the call out of line.
     */
    static long keepBits(int seed, long index, int threshold24, int[] draws) {
        draws(seed, index, draws);
        return IntVector.fromArray(IS, draws, 0).compare(VectorOperators.LT, threshold24).toLong();
    }

    /** The 24-bit draws of elements [index, index + lanes), as {@link #keeps} compares them, into {@code out}. */
    static void draws(int seed, long index, int[] out) {
        IntVector h = IntVector.broadcast(IS, (int) index).addIndex(1).mul(0x9E3779B1)
                .lanewise(VectorOperators.XOR, seed ^ (int) (index >>> 32) * 0x85EBCA6B);
        h = h.lanewise(VectorOperators.XOR, h.lanewise(VectorOperators.LSHR, 16)).mul(0x85EBCA6B);
        h = h.lanewise(VectorOperators.XOR, h.lanewise(VectorOperators.LSHR, 13)).mul(0xC2B2AE35);
        h.lanewise(VectorOperators.XOR, h.lanewise(VectorOperators.LSHR, 16)).lanewise(VectorOperators.LSHR, 8)
                .intoArray(out, 0);
    }

    /**
     * A mask whose keep probability depends on each element's rank (DELLA's): element j of
     * {@code values[from..from+length)}, the tensor's element {@code index + j}, is kept when
     * {@link #keeps}{@code (seed, index + j, thresholds[rank[j]])}, multiplied by {@code inverse[rank[j]]} when
     * {@code inverse} is given, and zeroed otherwise. In index order, a vector at a time (the ranks gather the
     * thresholds), so no branch depends on the draw.
     */
    public static void keepByRank(float[] values, int from, int length, int seed, long index, int[] rank,
                                  int[] thresholds, float[] inverse) {
        int[] draws = drawBuffer();
        int j = 0;
        for (int bound = length - length % IS.length(); j < bound; j += IS.length()) {
            IntVector t = IntVector.fromArray(IS, thresholds, 0, rank, j);
            draws(seed, index + j, draws);
            VectorMask<Float> keep = IntVector.fromArray(IS, draws, 0).compare(VectorOperators.LT, t).cast(FS);
            FloatVector v = FloatVector.fromArray(FS, values, from + j);
            if (inverse != null) {
                v = v.mul(FloatVector.fromArray(FS, inverse, 0, rank, j));
            }
            v.blend(0f, keep.not()).intoArray(values, from + j);
        }
        for (; j < length; j++) {
            float kept = inverse == null ? values[from + j] : values[from + j] * inverse[rank[j]];
            values[from + j] = keeps(seed, index + j, thresholds[rank[j]]) ? kept : 0f;
        }
    }
}
