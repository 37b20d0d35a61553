package io.modelmerge.engine.method;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Optional;

/**
 * {@code slerp}: spherical linear interpolation between the base model (t = 0) and one other model (t = 1), per
 * tensor, as mergekit's slerp.py: the angle θ between the two tensors is taken from their L2-normalised copies
 * (norms floored at 1e-8), and the result is sin((1−t)θ)/sin θ · base + sin(tθ)/sin θ · model applied to the
 * original, unnormalised tensors. Nearly parallel tensors (|cos θ| > 0.9995) are interpolated linearly, as
 * mergekit does, where the sines lose precision. {@code t} may be a gradient over the layers or filtered.
 */
public final class SlerpMerge implements MergeMethod {
    /** mergekit's threshold on |cos θ| above which it falls back to linear interpolation. */
    static final double PARALLEL = 0.9995;
    private static final double NORM_FLOOR = 1e-8;

    @Override
    public String name() {
        return "slerp";
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
        return List.of(ParameterDef.required("t", 0.5));
    }

    @Override
    public int minModels() {
        return 1;
    }

    @Override
    public int maxModels() {
        return 1;
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        return new Slerp(p.number("t"));
    }

    /** One pass gathers the dot product and both norms; the merge is then a fixed blend of the two tensors. */
    private static final class Slerp implements TensorMerge {
        private final double t;
        private float baseScale;
        private float modelScale;
        private boolean blended;

        Slerp(double t) {
            this.t = t;
        }

        @Override
        public Optional<Pass<?>> nextPass() {
            return blended ? Optional.empty() : Optional.of(Pass.of("dot product and norms", this::sums, this::blend));
        }

        private BlockSums sums() {
            return new BlockSums(3, (block, from, length, sums) -> {
                float[] base = block.base();
                float[] model = block.models()[0];
                for (int i = from; i < from + length; i++) {
                    sums[0] += (double) base[i] * model[i];
                    sums[1] += (double) base[i] * base[i];
                    sums[2] += (double) model[i] * model[i];
                }
            });
        }

        /** From Σ base·model, Σ base² and Σ model²: the angle, and the blend's two scales. */
        private void blend(List<BlockSums> accumulators) {
            blended = true;
            double[] sums = BlockSums.total(accumulators);
            double cos = sums[0] / (Math.max(Math.sqrt(sums[1]), NORM_FLOOR) * Math.max(Math.sqrt(sums[2]), NORM_FLOOR));
            if (Math.abs(cos) > PARALLEL) {
                baseScale = (float) (1 - t);
                modelScale = (float) t;
                return;
            }
            double theta = StrictMath.acos(cos);
            double sin = StrictMath.sin(theta);
            baseScale = (float) (StrictMath.sin(theta - theta * t) / sin);
            modelScale = (float) (StrictMath.sin(theta * t) / sin);
        }

        @Override
        public void merge(Block block, float[] out) {
            float[] base = block.base();
            float[] model = block.models()[0];
            for (int i = 0; i < block.length(); i++) {
                out[i] = baseScale * base[i] + modelScale * model[i];
            }
        }
    }
}
