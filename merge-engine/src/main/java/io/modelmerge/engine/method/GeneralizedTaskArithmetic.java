package io.modelmerge.engine.method;

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
     * @param election       "none", "mergekit" or "paper"
     * @param rescale        for RANDOM: "none", "l1" or "inverse_density"
     */
    public static TensorMerge forTensor(TensorParameters p, Sparsification sparsification, String election,
                                        boolean normalize, double lambda, String rescale) {
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
        private final String election;
        private final boolean normalize;
        private final float lambda;
        private final String rescale;
        private final float[] weights;
        private final double[] density;
        private final int[] seeds;
        private final int[] threshold24;
        private final float[] magnitudeThreshold;
        private final float[] scale;
        private final boolean[] sparse;
        /** The radix selection per model, kept from the first pass to the second. */
        private TopK[] selection;

        Merge(TensorParameters p, Sparsification sparsification, String election, boolean normalize, float lambda,
              String rescale, float[] weights, double[] density) {
            this.p = p;
            this.sparsification = sparsification;
            this.election = election;
            this.normalize = normalize;
            this.lambda = lambda;
            this.rescale = rescale;
            this.weights = weights;
            this.density = density;
            int n = weights.length;
            this.seeds = new int[n];
            this.threshold24 = new int[n];
            this.magnitudeThreshold = new float[n];
            this.scale = new float[n];
            this.sparse = new boolean[n];
            for (int m = 0; m < n; m++) {
                seeds[m] = modelSeed(p.seed(), m);
                sparse[m] = sparsification != Sparsification.NONE && density[m] < 1.0;
                threshold24[m] = (int) Math.round(density[m] * (1 << 24));
                scale[m] = sparsification == Sparsification.RANDOM && sparse[m] && rescale.equals("inverse_density")
                        ? (float) (1.0 / density[m]) : 1f;
                long k = (long) Math.floor(density[m] * p.elements());
                if (sparsification == Sparsification.MAGNITUDE && sparse[m] && k == 0) {
                    magnitudeThreshold[m] = Float.POSITIVE_INFINITY; // nothing survives a density this low
                }
            }
        }

        private boolean magnitudePasses() {
            if (sparsification != Sparsification.MAGNITUDE) {
                return false;
            }
            for (int m = 0; m < weights.length; m++) {
                if (sparse[m] && magnitudeThreshold[m] != Float.POSITIVE_INFINITY) {
                    return true;
                }
            }
            return false;
        }

        private boolean l1Pass() {
            if (sparsification != Sparsification.RANDOM || !rescale.equals("l1")) {
                return false;
            }
            for (boolean s : sparse) {
                if (s) {
                    return true;
                }
            }
            return false;
        }

        @Override
        public int passes() {
            return magnitudePasses() ? 2 : l1Pass() ? 1 : 0;
        }

        @Override
        public Accumulator accumulator(int pass) {
            return magnitudePasses() ? new Magnitudes(pass) : new L1Sums();
        }

        /** Per model, a radix-select histogram of |δ|. */
        private final class Magnitudes implements Accumulator {
            final int pass;
            final TopK[] topk = new TopK[weights.length];
            float[] delta = new float[0];

            Magnitudes(int pass) {
                this.pass = pass;
                for (int m = 0; m < weights.length; m++) {
                    long k = (long) Math.floor(density[m] * p.elements());
                    topk[m] = sparse[m] && k > 0 ? new TopK(k) : null;
                }
            }

            @Override
            public void add(Block block) {
                if (delta.length < block.length()) {
                    delta = new float[block.length()];
                }
                float[] d = delta;
                for (int m = 0; m < topk.length; m++) {
                    if (topk[m] == null) {
                        continue;
                    }
                    float[] x = block.models()[m];
                    float[] base = block.base();
                    int length = block.length();
                    for (int i = 0; i < length; i++) {
                        d[i] = x[i] - base[i];
                    }
                    if (pass == 0) {
                        topk[m].countHigh(d, length);
                    } else {
                        topk[m].countLow(d, length, selection[m].bucket());
                    }
                }
            }
        }

        /** Per model, Σ|δ| and Σ|kept δ| for L1 rescaling. */
        private final class L1Sums implements Accumulator {
            final double[] all = new double[weights.length];
            final double[] kept = new double[weights.length];

            @Override
            public void add(Block block) {
                for (int m = 0; m < weights.length; m++) {
                    if (!sparse[m]) {
                        continue;
                    }
                    float[] x = block.models()[m];
                    float[] base = block.base();
                    double a = 0;
                    double k = 0;
                    for (int i = 0; i < block.length(); i++) {
                        float d = Math.abs(x[i] - base[i]);
                        a += d;
                        if (keeps(seeds[m], block.offset() + i, threshold24[m])) {
                            k += d;
                        }
                    }
                    all[m] += a;
                    kept[m] += k;
                }
            }
        }

        @Override
        public void endPass(int pass, List<Accumulator> accumulators) {
            int n = weights.length;
            if (magnitudePasses()) {
                if (pass == 0) {
                    selection = ((Magnitudes) accumulators.getFirst()).topk;
                }
                for (int m = 0; m < n; m++) {
                    if (selection[m] == null) {
                        continue;
                    }
                    for (Accumulator a : pass == 0 ? accumulators.subList(1, accumulators.size()) : accumulators) {
                        if (pass == 0) {
                            selection[m].addHigh(((Magnitudes) a).topk[m]);
                        } else {
                            selection[m].addLow(((Magnitudes) a).topk[m]);
                        }
                    }
                    if (pass == 0) {
                        selection[m].chooseBucket();
                    } else {
                        magnitudeThreshold[m] = selection[m].threshold();
                    }
                }
                return;
            }
            double[] all = new double[n];
            double[] kept = new double[n];
            for (Accumulator a : accumulators) {
                L1Sums sums = (L1Sums) a;
                for (int m = 0; m < n; m++) {
                    all[m] += sums.all[m];
                    kept[m] += sums.kept[m];
                }
            }
            for (int m = 0; m < n; m++) {
                // As mergekit's rescaled_masked_tensor: leave the mask unscaled when either norm is ~0.
                scale[m] = sparse[m] && all[m] >= 1e-7 && kept[m] >= 1e-7 ? (float) (all[m] / kept[m]) : 1f;
            }
        }

        @Override
        public void merge(Block block, float[] out) {
            int length = block.length();
            int i = 0;
            for (int bound = FS.loopBound(length); i < bound; i += FS.length()) {
                step(block, out, i, FS.maskAll(true));
            }
            if (i < length) {
                step(block, out, i, FS.indexInRange(i, length));
            }
        }

        private FloatVector trimmed(Block block, int m, int i, FloatVector base, VectorMask<Float> lanes) {
            FloatVector delta = FloatVector.fromArray(FS, block.models()[m], i, lanes).sub(base);
            if (!sparse[m]) {
                return delta;
            }
            VectorMask<Float> keep;
            if (sparsification == Sparsification.MAGNITUDE) {
                keep = delta.abs().compare(VectorOperators.GE, magnitudeThreshold[m]);
            } else {
                IntVector index = IntVector.broadcast(IS, (int) (block.offset() + i)).addIndex(1);
                int high = (int) ((block.offset() + i) >>> 32) * 0x85EBCA6B;
                IntVector h = index.mul(0x9E3779B1).lanewise(VectorOperators.XOR, seeds[m] ^ high);
                h = h.lanewise(VectorOperators.XOR, h.lanewise(VectorOperators.LSHR, 16)).mul(0x85EBCA6B);
                h = h.lanewise(VectorOperators.XOR, h.lanewise(VectorOperators.LSHR, 13)).mul(0xC2B2AE35);
                h = h.lanewise(VectorOperators.XOR, h.lanewise(VectorOperators.LSHR, 16));
                keep = h.lanewise(VectorOperators.LSHR, 8).compare(VectorOperators.LT, threshold24[m]).cast(FS);
            }
            FloatVector kept = FloatVector.zero(FS).blend(delta, keep);
            return scale[m] == 1f ? kept : kept.mul(scale[m]);
        }

        private void step(Block block, float[] out, int i, VectorMask<Float> lanes) {
            int n = weights.length;
            FloatVector base = FloatVector.fromArray(FS, block.base(), i, lanes);
            FloatVector zero = FloatVector.zero(FS);
            FloatVector mixed = zero;
            FloatVector divisor;
            if (election.equals("none")) {
                float sum = 0;
                for (int m = 0; m < n; m++) {
                    mixed = trimmed(block, m, i, base, lanes).fma(FloatVector.broadcast(FS, weights[m]), mixed);
                    sum += weights[m];
                }
                divisor = FloatVector.broadcast(FS, Math.abs(sum) < 1e-8f ? 1f : sum);
            } else {
                boolean paper = election.equals("paper");
                FloatVector vote = zero;
                for (int m = 0; m < n; m++) {
                    FloatVector t = trimmed(block, m, i, base, lanes);
                    vote = paper ? vote.add(t) : t.fma(FloatVector.broadcast(FS, weights[m]), vote);
                }
                VectorMask<Float> positive = vote.compare(VectorOperators.GE, 0f);
                divisor = zero;
                for (int m = 0; m < n; m++) {
                    FloatVector t = trimmed(block, m, i, base, lanes);
                    FloatVector weighted = t.mul(weights[m]);
                    FloatVector judged = paper ? t : weighted; // the paper elects on, and compares, unweighted deltas
                    VectorMask<Float> agrees = judged.compare(VectorOperators.GT, 0f).and(positive)
                            .or(judged.compare(VectorOperators.LT, 0f).andNot(positive));
                    mixed = mixed.add(zero.blend(weighted, agrees));
                    divisor = divisor.add(zero.blend(FloatVector.broadcast(FS, paper ? 1f : weights[m]), agrees));
                }
                divisor = divisor.blend(1f, divisor.compare(VectorOperators.EQ, 0f));
            }
            FloatVector delta = normalize ? mixed.div(divisor) : mixed;
            delta.fma(FloatVector.broadcast(FS, lambda), base).intoArray(out, i, lanes);
        }

        @Override
        public String describe() {
            StringBuilder s = new StringBuilder();
            for (int m = 0; m < weights.length; m++) {
                s.append(m == 0 ? "" : "; ").append("model ").append(m).append(": weight ").append(weights[m]);
                if (sparse[m]) {
                    s.append(", density ").append(density[m]);
                    if (sparsification == Sparsification.MAGNITUDE) {
                        s.append(", |δ| threshold ").append(magnitudeThreshold[m]);
                    } else {
                        s.append(", rescale ").append(scale[m]);
                    }
                }
            }
            return s.toString();
        }
    }
}
