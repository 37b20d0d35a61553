package io.modelmerge.engine.exec;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.storage.safetensors.DType;

/**
 * An output value that is NaN or infinite, or that becomes infinite in the output dtype: the merge fails with
 * the tensor named rather than write a model that computes NaN. Thrown while blocks are written (from worker
 * threads, hence unchecked) and turned into a {@link io.modelmerge.engine.recipe.RecipeException} by the run.
 */
final class NonFiniteOutput extends RuntimeException {
    private NonFiniteOutput(String tensor, long element, float value, DType dtype) {
        super("tensor '" + tensor + "' would hold " + (Float.isNaN(value) ? "NaN" : Float.isInfinite(value)
                ? "infinity" : value + ", which is infinite as " + dtype) + " (element " + element + ", its first such"
                + " value): the inputs or the parameters overflow, so nothing was written; set allow_nonfinite: true"
                + " in the recipe to write it anyway");
    }

    /** Refuses {@code values[0..length)}, elements {@code offset...} of {@code tensor}, if one is not finite. */
    static void check(String tensor, long offset, float[] values, int length, DType dtype) {
        int at = Floats.firstNonFinite(values, length, dtype);
        if (at >= 0) {
            throw new NonFiniteOutput(tensor, offset + at, values[at], dtype);
        }
    }
}
