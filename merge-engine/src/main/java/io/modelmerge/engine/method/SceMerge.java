package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.TopK;
import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@code sce} (Wan et al., FuseChat: Select, Calculate, Erase; mergekit's sce.py). Select: keep the entries
 * whose variance across the task vectors is in the top {@code select_topk} fraction of the nonzero variances
 * (an exact radix select over the tensor). Calculate: each model's weight is the mean of its selected task
 * vector squared, divided by the sum over models (uniform when that sum is below 1e-6). Erase: drop entries
 * whose sign differs from the sign of the sum of the task vectors (zero agrees with neither). The result is
 * base + Σ wᵢτᵢ / Σ wᵢ over the agreeing entries (divisor floored at 1e-6).
 */
public final class SceMerge implements MergeMethod {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;

    @Override
    public String name() {
        return "sce";
    }

    @Override
    public boolean requiresBase() {
        return true;
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return List.of();
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of(ParameterDef.number("select_topk", 1.0), ParameterDef.INT8_MASK);
    }

    @Override
    public void check(TensorParameters p) throws RecipeException {
        double topk = p.number("select_topk");
        if (!(topk >= 0 && topk <= 1)) {
            throw new RecipeException("select_topk " + topk + " for tensor '" + p.tensor() + "' is outside [0, 1]");
        }
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        return new Sce(p.models(), p.elements(), p.number("select_topk"));
    }

    private static final class Sce implements TensorMerge {
        private final int n;
        private final long elements;
        private final double topk;
        private final boolean selecting;
        private TopK selection;
        private float threshold;
        private float[] weights;

        Sce(int n, long elements, double topk) {
            this.n = n;
            this.elements = elements;
            this.topk = topk;
            this.selecting = topk > 0 && topk < 1;
            this.threshold = topk >= 1 ? Float.NEGATIVE_INFINITY : Float.POSITIVE_INFINITY;
        }

        @Override
        public int passes() {
            return selecting ? 3 : 1;
        }

        private boolean weightPass(int pass) {
            return pass == passes() - 1;
        }

        @Override
        public Accumulator accumulator(int pass) {
            if (weightPass(pass)) {
                return new BlockSums(n, (block, from, length, sums) -> {
                    float[] variance = variances(block, from, length);
                    for (int i = 0; i < length; i++) {
                        if (variance[i] >= threshold) {
                            for (int m = 0; m < n; m++) {
                                double d = block.models()[m][from + i] - block.base()[from + i];
                                sums[m] += d * d;
                            }
                        }
                    }
                });
            }
            return new Variances(pass);
        }

        /** Pass 0: the nonzero variances and their high-bit histogram; pass 1: the low bits in the bucket. */
        private final class Variances implements Accumulator {
            final int pass;
            final TopK counts = new TopK(1);
            long nonzero;

            Variances(int pass) {
                this.pass = pass;
            }

            @Override
            public void add(Block block) {
                float[] v = variances(block, 0, block.length());
                for (int i = 0; i < block.length(); i++) {
                    if (v[i] != 0) {
                        nonzero++;
                    }
                }
                if (pass == 0) {
                    counts.countHigh(v, block.length());
                } else if (selection != null) {
                    counts.countLow(v, block.length(), selection.bucket());
                }
            }
        }

        @Override
        public void endPass(int pass, List<Accumulator> accumulators) {
            if (weightPass(pass)) {
                double[] sums = BlockSums.total(accumulators);
                double total = 0;
                for (int m = 0; m < n; m++) {
                    sums[m] /= elements;
                    total += sums[m];
                }
                weights = new float[n];
                for (int m = 0; m < n; m++) {
                    weights[m] = (float) (Math.abs(total) < 1e-6 ? 1.0 / n : sums[m] / total);
                }
                return;
            }
            if (pass == 0) {
                long nonzero = accumulators.stream().mapToLong(a -> ((Variances) a).nonzero).sum();
                long k = (long) Math.floor(nonzero * topk);
                if (k == 0) {
                    return; // nothing selected: threshold stays +∞
                }
                selection = new TopK(k);
                accumulators.forEach(a -> selection.addHigh(((Variances) a).counts));
                selection.chooseBucket();
            } else if (selection != null) {
                accumulators.forEach(a -> selection.addLow(((Variances) a).counts));
                threshold = selection.threshold();
            }
        }

        /**
         * The population variance of the task vectors at elements [from, from + length) of the block, in F32 as
         * mergekit computes it.
         */
        private float[] variances(Block block, int from, int length) {
            float[] variance = new float[length];
            float[] base = block.base();
            for (int j = 0; j < length; j += FS.length()) {
                VectorMask<Float> lanes = FS.indexInRange(j, length);
                int i = from + j;
                FloatVector b = FloatVector.fromArray(FS, base, i, lanes);
                FloatVector mean = FloatVector.zero(FS);
                for (int m = 0; m < n; m++) {
                    mean = mean.add(FloatVector.fromArray(FS, block.models()[m], i, lanes).sub(b));
                }
                mean = mean.div(n);
                FloatVector sum = FloatVector.zero(FS);
                for (int m = 0; m < n; m++) {
                    FloatVector d = FloatVector.fromArray(FS, block.models()[m], i, lanes).sub(b).sub(mean);
                    sum = d.fma(d, sum);
                }
                sum.div(n).intoArray(variance, j, lanes);
            }
            return variance;
        }

        /** Selected entries: sign election on Σ τ (0 elects +; a zero τ agrees with neither), weighted mean. */
        @Override
        public void merge(Block block, float[] out) {
            float[] variance = variances(block, 0, block.length());
            float[] base = block.base();
            int length = block.length();
            for (int i = 0; i < length; i += FS.length()) {
                VectorMask<Float> lanes = FS.indexInRange(i, length);
                FloatVector b = FloatVector.fromArray(FS, base, i, lanes);
                VectorMask<Float> selected = FloatVector.fromArray(FS, variance, i, lanes)
                        .compare(VectorOperators.GE, threshold);
                FloatVector vote = FloatVector.zero(FS);
                for (int m = 0; m < n; m++) {
                    vote = vote.add(FloatVector.fromArray(FS, block.models()[m], i, lanes).sub(b));
                }
                VectorMask<Float> positive = vote.compare(VectorOperators.GE, 0f);
                FloatVector mixed = FloatVector.zero(FS);
                FloatVector divisor = FloatVector.zero(FS);
                for (int m = 0; m < n; m++) {
                    FloatVector d = FloatVector.fromArray(FS, block.models()[m], i, lanes).sub(b);
                    VectorMask<Float> agrees = d.compare(VectorOperators.GT, 0f).and(positive)
                            .or(d.compare(VectorOperators.LT, 0f).andNot(positive));
                    mixed = mixed.add(FloatVector.zero(FS).blend(d.mul(weights[m]), agrees));
                    divisor = divisor.add(FloatVector.zero(FS).blend(weights[m], agrees));
                }
                // not selected: every task vector is zero there, and so is the merged one
                FloatVector delta = FloatVector.zero(FS).blend(mixed.div(divisor.max(1e-6f)), selected);
                b.add(delta).intoArray(out, i, lanes);
            }
        }
    }
}
