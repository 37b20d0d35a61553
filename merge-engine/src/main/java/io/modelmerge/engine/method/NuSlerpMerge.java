package io.modelmerge.engine.method;

import java.util.List;

/**
 * {@code nuslerp} (mergekit's nuslerp.py): slerp between exactly two models at t = w₂/(w₁ + w₂) (0.5 when the
 * weights sum to ~0), or between their task vectors when a base is named (the result is added to the base).
 * {@code nuslerp_flatten: true} (default) takes one angle over the whole tensor; {@code false} one per vector
 * along the last dimension (each row), or along the first (each column) with {@code nuslerp_row_wise: true}, as
 * mergekit's dim choice does. Norms are floored at 1e-7; where sin θ < 1e-8 the two are interpolated linearly.
 */
public final class NuSlerpMerge implements MergeMethod {

    @Override
    public String name() {
        return "nuslerp";
    }

    @Override
    public boolean requiresBase() {
        return false;
    }

    @Override
    public boolean usesBase() {
        return true;
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return List.of(ParameterDef.required("weight", 0.5));
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of(ParameterDef.flag("nuslerp_flatten", true), ParameterDef.flag("nuslerp_row_wise", false));
    }

    @Override
    public int minModels() {
        return 2;
    }

    @Override
    public int maxModels() {
        return 2;
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        double w0 = p.modelNumber(0, "weight");
        double w1 = p.modelNumber(1, "weight");
        double t = Math.abs(w0 + w1) < 1e-6 ? 0.5 : w1 / (w0 + w1);
        // A vector has one row: mergekit's row-wise transpose leaves it whole, so it takes one angle, as flattened.
        boolean vector = Integer.valueOf(1).equals(p.global().get(MergeMethod.TENSOR_RANK));
        GramCombination.Scope scope = p.flag("nuslerp_flatten") || vector ? GramCombination.Scope.TENSOR
                : p.flag("nuslerp_row_wise") ? GramCombination.Scope.COLUMN : GramCombination.Scope.ROW;
        return new GramCombination(p, scope, gram -> coefficients(gram, t));
    }

    static double[] coefficients(double[][] gram, double t) {
        double n0 = Math.max(Math.sqrt(Math.max(gram[0][0], 0)), 1e-7);
        double n1 = Math.max(Math.sqrt(Math.max(gram[1][1], 0)), 1e-7);
        double theta = StrictMath.acos(Math.clamp(gram[0][1] / (n0 * n1), -1.0, 1.0));
        double sin = StrictMath.sin(theta);
        if (Math.abs(sin) < 1e-8) {
            return new double[]{1 - t, t};
        }
        return new double[]{StrictMath.sin((1 - t) * theta) / sin, StrictMath.sin(t * theta) / sin};
    }
}
