package io.modelmerge.engine.method;

import io.modelmerge.engine.recipe.RecipeException;

/** For methods that divide by the sum of the weights ({@code normalize: true} without a sign election). */
final class DividedWeights {
    private DividedWeights() {
    }

    /** With {@code normalize} on, refuses weights that sum to (nearly) zero, before any data is read. */
    static void checkWhenNormalizing(TensorParameters p, String method) throws RecipeException {
        if (p.flag("normalize")) {
            check(p, method);
        }
    }

    /** Refuses weights that sum to (nearly) zero, before any data is read. */
    private static void check(TensorParameters p, String method) throws RecipeException {
        double sum = 0;
        for (int m = 0; m < p.models(); m++) {
            sum += p.modelNumber(m, "weight");
        }
        if (Math.abs(sum) < 1e-8) {
            throw new RecipeException("weights sum to zero for tensor '" + p.tensor() + "', and " + method
                    + " divides by their sum (set normalize: false or change the weights)");
        }
    }
}
