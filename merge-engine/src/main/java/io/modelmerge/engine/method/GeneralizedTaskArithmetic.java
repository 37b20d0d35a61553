package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.Lanes;
import io.modelmerge.engine.kernel.MagnitudeBracket;
import io.modelmerge.engine.kernel.TopK;
import java.util.List;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Task arithmetic in mergekit's general form (generalized_task_arithmetic.py), one fused pass per block:
 * each model's task vector δ = θ − θ_base is sparsified (top-k by magnitude, or a Bernoulli mask as DARE does)
 * and rescaled, weighted, optionally filtered by sign election, summed, optionally divided, scaled by λ and
 * added to the base.
 *
 * <p>Sign election, variant {@code mergekit}: the majority sign is that of Σ wᵢδᵢ (zero counts as +), an
 * entry agrees when its weighted delta has that sign, and the sum is divided by the sum of agreeing weights.
 * Variant {@code paper} (TIES paper, PEFT): the majority sign is that of the unweighted Σ δᵢ, and the sum of
 * agreeing weighted deltas is divided by the number of agreeing models.
 *
 * <p>DARE rescale, variant {@code l1} (mergekit): the kept entries are scaled so the task vector keeps its L1
 * norm; {@code inverse_density} (DARE paper, PEFT): kept entries are divided by the density.
 *
 * <p>Random masks come from a counter-based hash of (seed, model, element index), so the result does not
 * depend on block sizes or thread scheduling.
 */
public final class GeneralizedTaskArithmetic {

    public enum Sparsification { NONE, MAGNITUDE, RANDOM }

    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> IS = IntVector.SPECIES_PREFERRED;

    private GeneralizedTaskArithmetic() {
    }

    /**
     * The merge of one tensor.
     *
     * @param sparsification how task vectors are thinned before merging
     * @param election       how the task vectors combine
     * @param rescale        for RANDOM: how the kept entries are scaled ({@code L1}, {@code INVERSE_DENSITY}, {@code NONE})
     */
    public static TensorMerge forTensor(TensorParameters p, Sparsification sparsification, Election election,
                                        boolean normalize, double lambda, Rescale rescale) {
        int n = p.models();
        float[] weights = new float[n];
        double[] density = new double[n];
        for (int m = 0; m < n; m++) {
            weights[m] = (float) p.modelNumber(m, "weight");
            density[m] = p.perModel().get(m).containsKey("density") ? p.modelNumber(m, "density") : 1.0;
        }
        return new Merge(p, sparsification, election, normalize, (float) lambda, rescale, weights, density);
    }

    /** The seed of model {@code m}'s random mask in a tensor whose seed is {@code tensorSeed}. */
    static int modelSeed(long tensorSeed, int m) {
        long z = tensorSeed + 0x9E3779B97F4A7C15L * (m + 1);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return (int) (z ^ (z >>> 31));
    }

    /** Lanes of elements [index, index + lanes) that survive the mask: {@link #keeps}, a vector at a time. */
    static VectorMask<Float> randomKeep(int seed, long index, int threshold24) {
        int high = (int) (index >>> 32) * 0x85EBCA6B;
        IntVector h = IntVector.broadcast(IS, (int) index).addIndex(1).mul(0x9E3779B1)
                .lanewise(VectorOperators.XOR, seed ^ high);
        h = h.lanewise(VectorOperators.XOR, h.lanewise(VectorOperators.LSHR, 16)).mul(0x85EBCA6B);
        h = h.lanewise(VectorOperators.XOR, h.lanewise(VectorOperators.LSHR, 13)).mul(0xC2B2AE35);
        h = h.lanewise(VectorOperators.XOR, h.lanewise(VectorOperators.LSHR, 16));
        return h.lanewise(VectorOperators.LSHR, 8).compare(VectorOperators.LT, threshold24).cast(FS);
    }

    /** Whether element {@code index} survives a Bernoulli(density) mask with {@code seed}: murmur3's finaliser. */
    static boolean keeps(int seed, long index, int threshold24) {
        int h = ((int) index * 0x9E3779B1) ^ seed ^ (int) (index >>> 32) * 0x85EBCA6B;
        h ^= h >>> 16;
        h *= 0x85EBCA6B;
        h ^= h >>> 13;
        h *= 0xC2B2AE35;
        h ^= h >>> 16;
        return (h >>> 8) < threshold24;
    }

    private static final class Merge implements TensorMerge {
        private final TensorParameters p;
        private final Sparsification sparsification;
        private final TaskVectorSum combination;
        private final Rescale rescale;
        private final float[] weights;
        private final double[] density;
        private final int[] seeds;
        private final int[] threshold24;
        private final float[] magnitudeThreshold;
        private final float[] scale;
        private final boolean[] sparse;
        /** Per model: the bracket from the sampled pass, whether it missed, and the exact fallback's selection. */
        private final MagnitudeBracket[] brackets;
        private final boolean[] exact;
        private TopK[] selection;

        Merge(TensorParameters p, Sparsification sparsification, Election election, boolean normalize, float lambda,
              Rescale rescale, float[] weights, double[] density) {
            this.p = p;
            this.sparsification = sparsification;
            this.combination = new TaskVectorSum(weights, election, normalize, lambda);
            this.rescale = rescale;
            this.weights = weights;
            this.density = density;
            int n = weights.length;
            this.seeds = new int[n];
            this.threshold24 = new int[n];
            this.magnitudeThreshold = new float[n];
            this.scale = new float[n];
            this.sparse = new boolean[n];
            this.brackets = new MagnitudeBracket[n];
            this.exact = new boolean[n];
            for (int m = 0; m < n; m++) {
                seeds[m] = modelSeed(p.seed(), m);
                sparse[m] = sparsification != Sparsification.NONE && density[m] < 1.0;
                threshold24[m] = (int) Math.round(density[m] * (1 << 24));
                scale[m] = sparsification == Sparsification.RANDOM && sparse[m] && rescale == Rescale.INVERSE_DENSITY
                        ? (float) (1.0 / density[m]) : 1f;
                if (sparsification == Sparsification.MAGNITUDE && sparse[m] && !p.modelThresholds().isEmpty()) {
                    magnitudeThreshold[m] = p.modelThresholds().get(m); // chosen over the whole model: no passes
                } else if (sparsification == Sparsification.MAGNITUDE && sparse[m] && k(m) == 0) {
                    magnitudeThreshold[m] = Float.POSITIVE_INFINITY; // nothing survives a density this low
                }
            }
        }

        private boolean magnitudePasses() {
            if (!p.modelThresholds().isEmpty()) {
                return false;
            }
            for (int m = 0; m < weights.length; m++) {
                if (selecting(m)) {
                    return true;
                }
            }
            return false;
        }

        private boolean l1Pass() {
            if (sparsification != Sparsification.RANDOM || rescale != Rescale.L1) {
                return false;
            }
            for (boolean s : sparse) {
                if (s) {
                    return true;
                }
            }
            return false;
        }

        /** Whether model m's magnitude threshold is to be selected (sparse, and some entries survive). */
        private boolean selecting(int m) {
            return sparsification == Sparsification.MAGNITUDE && sparse[m]
                    && magnitudeThreshold[m] != Float.POSITIVE_INFINITY;
        }

        private long k(int m) {
            return (long) Math.floor(density[m] * p.elements());
        }

        /**
         * Whether model m takes part in magnitude pass {@code pass}: pass 0 samples every selecting model; pass 1
         * settles those with a usable bracket; passes 2 and 3 redo exactly those whose bracket was too wide or
         * missed.
         */
        private boolean takesPart(int m, int pass) {
            return selecting(m) && (pass == 0 || (pass >= 2) == exact[m]);
        }

        @Override
        public int passes() {
            if (magnitudePasses()) {
                for (boolean fallback : exact) {
                    if (fallback) {
                        return 4;
                    }
                }
                return 2;
            }
            return l1Pass() ? 1 : 0;
        }

        /** Tensors this large sample one block in 16 for the bracket; smaller ones read all of it. */
        @Override
        public int stride(int pass) {
            return pass == 0 && p.elements() >= (1L << 22) ? 16 : 1;
        }

        @Override
        public Accumulator accumulator(int pass) {
            return magnitudePasses() ? new Magnitudes(pass) : l1Sums();
        }

        /**
         * Per model, what one worker gathers about |δ| in a magnitude pass: pass 0 a sampled histogram, pass 1
         * the exact count above each model's bracket and the values inside it, passes 2 and 3 (only when a
         * bracket missed) the two levels of an exact radix select.
         */
        private final class Magnitudes implements Accumulator {
            final int pass;
            final MagnitudeBracket.Sample[] samples = new MagnitudeBracket.Sample[weights.length];
            final MagnitudeBracket.Candidates[] candidates = new MagnitudeBracket.Candidates[weights.length];
            final TopK[] topk = new TopK[weights.length];
            float[] delta = new float[0];

            Magnitudes(int pass) {
                this.pass = pass;
                for (int m = 0; m < weights.length; m++) {
                    if (!selecting(m)) {
                        continue;
                    }
                    switch (pass) {
                        case 0 -> samples[m] = new MagnitudeBracket.Sample();
                        case 1 -> candidates[m] = exact[m] ? null : brackets[m].candidates();
                        default -> topk[m] = exact[m] ? new TopK(k(m)) : null;
                    }
                }
            }

            @Override
            public void add(Block block) {
                int length = block.length();
                if (delta.length < length) {
                    delta = new float[length];
                }
                float[] d = delta;
                for (int m = 0; m < weights.length; m++) {
                    if (!takesPart(m, pass)) {
                        continue;
                    }
                    float[] x = block.models()[m];
                    float[] base = block.base();
                    for (int i = 0; i < length; i++) {
                        d[i] = x[i] - base[i];
                    }
                    switch (pass) {
                        case 0 -> samples[m].add(d, length);
                        case 1 -> candidates[m].add(d, length);
                        case 2 -> topk[m].countHigh(d, length);
                        default -> topk[m].countLow(d, length, selection[m].bucket());
                    }
                }
            }
        }

        /** Per model, Σ|δ| and Σ|kept δ| for L1 rescaling, over {@link BlockSums#CHUNK}-element runs. */
        private BlockSums l1Sums() {
            int n = weights.length;
            return new BlockSums(2 * n, (block, from, length, sums) -> {
                for (int m = 0; m < n; m++) {
                    if (sparse[m]) {
                        addL1(block, m, from, length, sums);
                    }
                }
            });
        }

        private void addL1(Block block, int m, int from, int length, double[] sums) {
            float[] x = block.models()[m];
            float[] base = block.base();
            FloatVector a = FloatVector.zero(FS);
            FloatVector k = FloatVector.zero(FS);
            int i = from;
            for (int bound = from + FS.loopBound(length); i < bound; i += FS.length()) {
                FloatVector d = FloatVector.fromArray(FS, x, i).sub(FloatVector.fromArray(FS, base, i)).abs();
                a = a.add(d);
                k = k.add(FloatVector.zero(FS).blend(d, randomKeep(seeds[m], block.offset() + i, threshold24[m])));
            }
            double sumAll = Lanes.sum(a);
            double sumKept = Lanes.sum(k);
            for (; i < from + length; i++) {
                float d = Math.abs(x[i] - base[i]);
                sumAll += d;
                if (keeps(seeds[m], block.offset() + i, threshold24[m])) {
                    sumKept += d;
                }
            }
            sums[m] += sumAll;
            sums[weights.length + m] += sumKept;
        }

        @Override
        public void endPass(int pass, List<Accumulator> accumulators) {
            int n = weights.length;
            if (magnitudePasses()) {
                for (int m = 0; m < n; m++) {
                    if (!takesPart(m, pass)) {
                        continue;
                    }
                    int model = m;
                    switch (pass) {
                        case 0 -> {
                            brackets[m] = MagnitudeBracket.of(accumulators.stream()
                                    .map(a -> ((Magnitudes) a).samples[model]).toList(), k(m), p.elements(),
                                    stride(0) == 1);
                            exact[m] = !brackets[m].usable();
                        }
                        case 1 -> {
                            var threshold = brackets[m].threshold(accumulators.stream()
                                    .map(a -> ((Magnitudes) a).candidates[model]).toList(), k(m));
                            if (threshold.isPresent()) {
                                magnitudeThreshold[m] = (float) threshold.getAsDouble();
                            } else {
                                exact[m] = true; // the sample misled: two more passes, exact
                            }
                        }
                        case 2 -> {
                            if (selection == null) {
                                selection = new TopK[n];
                            }
                            selection[m] = ((Magnitudes) accumulators.getFirst()).topk[m];
                            for (Accumulator a : accumulators.subList(1, accumulators.size())) {
                                selection[m].addHigh(((Magnitudes) a).topk[m]);
                            }
                            selection[m].chooseBucket();
                        }
                        default -> {
                            for (Accumulator a : accumulators) {
                                selection[m].addLow(((Magnitudes) a).topk[m]);
                            }
                            magnitudeThreshold[m] = selection[m].threshold();
                        }
                    }
                }
                return;
            }
            double[] sums = BlockSums.total(accumulators);
            double[] all = java.util.Arrays.copyOfRange(sums, 0, n);
            double[] kept = java.util.Arrays.copyOfRange(sums, n, 2 * n);
            for (int m = 0; m < n; m++) {
                // As mergekit's rescaled_masked_tensor: leave the mask unscaled when either norm is ~0.
                scale[m] = sparse[m] && all[m] >= 1e-7 && kept[m] >= 1e-7 ? (float) (all[m] / kept[m]) : 1f;
            }
        }

        /**
         * Merges in two small loops (small enough to be compiled with vectors kept in registers): each model's
         * block is turned into its trimmed, rescaled task vector in place, then the task vectors are combined.
         */
        @Override
        public void merge(Block block, float[] out) {
            for (int m = 0; m < weights.length; m++) {
                trimInPlace(block.models()[m], block.base(), m, block.offset(), block.length());
            }
            combination.into(block.models(), block.base(), out, block.length());
        }

        /** x ← scale · keep(x − base): the model's trimmed task vector. */
        private void trimInPlace(float[] x, float[] base, int m, long offset, int length) {
            boolean magnitude = sparse[m] && sparsification == Sparsification.MAGNITUDE;
            boolean random = sparse[m] && sparsification == Sparsification.RANDOM;
            float threshold = magnitudeThreshold[m];
            float s = scale[m];
            int i = 0;
            for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
                FloatVector d = FloatVector.fromArray(FS, x, i).sub(FloatVector.fromArray(FS, base, i));
                if (magnitude) {
                    d = FloatVector.zero(FS).blend(d, d.abs().compare(VectorOperators.GE, threshold));
                } else if (random) {
                    d = FloatVector.zero(FS).blend(d, randomKeep(seeds[m], offset + i, threshold24[m]));
                }
                d.mul(s).intoArray(x, i);
            }
            for (; i < length; i++) {
                float d = x[i] - base[i];
                boolean keep = magnitude ? Math.abs(d) >= threshold : !random || keeps(seeds[m], offset + i, threshold24[m]);
                x[i] = keep ? d * s : 0f;
            }
        }
    }
}
