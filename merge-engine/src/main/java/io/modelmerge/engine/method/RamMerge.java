package io.modelmerge.engine.method;

import java.util.List;
import java.util.Optional;

/**
 * {@code ram} and {@code ramplus_tl}: Reinforced Agent Merging (arXiv 2601.13572), as mergekit's ram.py. Per
 * element, a model contributes where its task vector is larger than {@code epsilon} in magnitude; an entry that
 * one model changed is taken whole, one that several changed is their mean: out = base + Σ τᵢ·[|τᵢ| > ε]·cᵢ,
 * with cᵢ = 1 where one model contributes and 1/count where several do.
 *
 * <p>{@code ramplus_tl} (tensor-local RAM+) scales the entries a model changed alone by
 * λᵢ = 1 + r·clamp(ρᵢ, 0, α), where ρᵢ = (its shared entries) / max(its unique entries, ε) over the whole tensor,
 * so a model whose changes mostly overlap others' keeps its few unique ones stronger. That needs one counting
 * pass per tensor. Counts and λ are computed in F32, as mergekit does.
 */
public final class RamMerge implements MergeMethod {
    private final boolean plus;

    public RamMerge(boolean plus) {
        this.plus = plus;
    }

    @Override
    public String name() {
        return plus ? "ramplus_tl" : "ram";
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
        ParameterDef epsilon = ParameterDef.number("epsilon", 1e-5);
        return plus ? List.of(ParameterDef.number("r", 0.1), ParameterDef.number("alpha", 0.2), epsilon)
                : List.of(epsilon);
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        float epsilon = (float) p.number("epsilon");
        if (!plus) {
            float[] ones = new float[p.models()];
            java.util.Arrays.fill(ones, 1f);
            return (block, out) -> merge(block, out, epsilon, ones);
        }
        return new PlusMerge(p.models(), epsilon, (float) p.number("r"), (float) p.number("alpha"));
    }

    /** Adds each model's task vector where it contributes: scaled by its λ where alone, divided where shared. */
    private static void merge(Block block, float[] out, float epsilon, float[] lambda) {
        float[] base = block.base();
        float[][] models = block.models();
        for (int i = 0; i < block.length(); i++) {
            int count = contributors(models, base, i, epsilon);
            float sum = 0;
            for (int m = 0; m < models.length; m++) {
                float tau = models[m][i] - base[i];
                if (Math.abs(tau) > epsilon) {
                    sum += count == 1 ? tau * lambda[m] : tau / count;
                }
            }
            out[i] = base[i] + sum;
        }
    }

    private static int contributors(float[][] models, float[] base, int i, float epsilon) {
        int count = 0;
        for (float[] model : models) {
            if (Math.abs(model[i] - base[i]) > epsilon) {
                count++;
            }
        }
        return count;
    }

    /** RAM+: a pass counts each model's shared and unique entries over the tensor, then λ per model. */
    private static final class PlusMerge implements TensorMerge {
        private final float epsilon;
        private final float r;
        private final float alpha;
        private final float[] lambda;
        private boolean counted;

        PlusMerge(int models, float epsilon, float r, float alpha) {
            this.epsilon = epsilon;
            this.r = r;
            this.alpha = alpha;
            this.lambda = new float[models];
        }

        /** Per model: entries it changed that others changed too, and entries it changed alone. */
        private final class Counts implements Accumulator {
            final long[] shared = new long[lambda.length];
            final long[] unique = new long[lambda.length];

            @Override
            public void add(Block block) {
                float[][] models = block.models();
                for (int i = 0; i < block.length(); i++) {
                    int count = contributors(models, block.base(), i, epsilon);
                    for (int m = 0; count > 0 && m < models.length; m++) {
                        if (Math.abs(models[m][i] - block.base()[i]) > epsilon) {
                            if (count == 1) {
                                unique[m]++;
                            } else {
                                shared[m]++;
                            }
                        }
                    }
                }
            }
        }

        @Override
        public Optional<Pass<?>> nextPass() {
            return counted ? Optional.empty() : Optional.of(Pass.of("shared and unique entries", Counts::new, this::end));
        }

        private void end(List<Counts> parts) {
            for (int m = 0; m < lambda.length; m++) {
                long shared = 0;
                long unique = 0;
                for (Counts c : parts) {
                    shared += c.shared[m];
                    unique += c.unique[m];
                }
                float rho = (float) shared / Math.max((float) unique, epsilon);
                lambda[m] = 1 + r * Math.min(Math.max(rho, 0f), alpha);
            }
            counted = true;
        }

        @Override
        public void merge(Block block, float[] out) {
            RamMerge.merge(block, out, epsilon, lambda);
        }
    }
}
