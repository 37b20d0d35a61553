package io.modelmerge.engine.exec;

import static io.modelmerge.engine.exec.StoredTensors.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.safetensors.DType;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code compute_dtype: recipe} reproduces mergekit's arithmetic in the recipe's 16-bit dtype: its loader converts
 * each input to that dtype (io/tasks.py), linear.py's weights, products, sum and quotient are torch tensors of
 * that dtype, and slerp.py computes in float32 numpy from the converted inputs. The expected values are those
 * steps written out here one element at a time, with a rounding written independently of the engine's.
 */
class ComputeDtypeRecipeTest {
    private static final String NAME = "model.layers.1.mlp.up_proj.weight";

    @TempDir
    Path dir;
    private int outputs;

    /** Round to nearest even at bit 16 (BF16), written from the format, not from the engine's code. */
    private static float bf16(float x) {
        int bits = Float.floatToRawIntBits(x);
        int lower = bits & 0xFFFF;
        int upper = bits >>> 16;
        if (lower > 0x8000 || (lower == 0x8000 && (upper & 1) == 1)) {
            upper++;
        }
        return Float.intBitsToFloat(upper << 16);
    }

    private Path model(String name, long seed, DType dtype, boolean roundedToBf16) throws IOException {
        return SyntheticCheckpoints.write(dir.resolve(name), SyntheticCheckpoints.llama(2, 16, 48, 32, dtype),
                (tensor, i) -> {
                    float v = (float) (TestNoise.of(seed, tensor, i) * (1 + i % 7));
                    // what the file holds, rounded to bfloat16 (for F16 files, as their stored values)
                    float stored = dtype == DType.F16 ? Float.float16ToFloat(Float.floatToFloat16(v)) : v;
                    return roundedToBf16 ? bf16(stored) : v;
                });
    }

    private Path merge(String yaml) throws Exception {
        Path out = dir.resolve("out-" + outputs++);
        new MergeExecutor(MergeOptions.defaults().withThreads(2).withMemory(64L << 20), p -> { }, new AtomicBoolean())
                .run(RecipeParser.parse(yaml), out);
        return out;
    }

    @Test
    void linearRoundsAsTorchDoesInBf16() throws Exception {
        Path[] models = {model("a", 1, DType.F32, false), model("b", 2, DType.F32, false), model("c", 3, DType.F32, false)};
        double[] w = {0.3, 0.55, 0.7};
        String recipe = "merge_method: linear\ndtype: bfloat16\nout_dtype: float32\nmodels:\n"
                + "  - model: %s\n    parameters: {weight: %s}\n".formatted(models[0], w[0])
                + "  - model: %s\n    parameters: {weight: %s}\n".formatted(models[1], w[1])
                + "  - model: %s\n    parameters: {weight: %s}\n".formatted(models[2], w[2]);
        float[] asMergekit = tensor(merge(recipe + "compute_dtype: recipe\n"), NAME);
        float[] inF32 = tensor(merge(recipe), NAME);

        float[][] x = new float[3][];
        for (int m = 0; m < 3; m++) {
            x[m] = tensor(models[m], NAME);
        }
        float weightSum = 0;
        for (double wi : w) {
            weightSum += bf16((float) wi);
        }
        float divisor = bf16(weightSum);
        float[] expected = new float[x[0].length];
        for (int i = 0; i < expected.length; i++) {
            float sum = 0;
            for (int m = 0; m < 3; m++) {
                sum += bf16(bf16((float) w[m]) * bf16(x[m][i]));
            }
            expected[i] = bf16(bf16(sum) / divisor);
        }
        assertArrayEquals(expected, asMergekit);
        int differing = 0;
        for (int i = 0; i < expected.length; i++) {
            differing += inF32[i] == expected[i] ? 0 : 1;
        }
        assertTrue(differing > expected.length / 10, "F32 compute differs from bf16 in " + differing + " elements");
    }

    @Test
    void slerpRoundsItsInputsAndComputesInF32() throws Exception {
        // F16 inputs converted to bfloat16 on load equal F16 inputs that hold those bfloat16 values already
        Path a = model("a16", 1, DType.F16, false);
        Path b = model("b16", 2, DType.F16, false);
        Path aRounded = model("a16r", 1, DType.F16, true);
        Path bRounded = model("b16r", 2, DType.F16, true);
        String slerp = "merge_method: slerp\nbase_model: %s\ndtype: bfloat16\nmodels:\n  - model: %s\n  - model: %s\n"
                + "parameters: {t: 0.35}\n";
        Path asMergekit = merge(slerp.formatted(a, a, b) + "compute_dtype: recipe\n");
        Path onRounded = merge(slerp.formatted(aRounded, aRounded, bRounded));
        Path unrounded = merge(slerp.formatted(a, a, b));
        assertArrayEquals(tensor(onRounded, NAME), tensor(asMergekit, NAME));
        assertTrue(!java.util.Arrays.equals(tensor(unrounded, NAME), tensor(asMergekit, NAME)));
    }

    @Test
    void withoutADtypeTheInputsOwnIsUsedAndF32ChangesNothing() throws Exception {
        Path a = model("a", 1, DType.F32, false);
        Path b = model("b", 2, DType.F32, false);
        String recipe = "merge_method: linear\nmodels:\n  - model: %s\n  - model: %s\nparameters: {weight: 0.3}\n"
                .formatted(a, b);
        assertArrayEquals(tensor(merge(recipe), NAME), tensor(merge(recipe + "compute_dtype: recipe\n"), NAME));
        assertArrayEquals(tensor(merge(recipe + "compute_dtype: float32\n"), NAME), tensor(merge(recipe), NAME));
        RecipeException e = assertThrows(RecipeException.class, () -> RecipeParser.parse(recipe + "compute_dtype: f8\n"));
        assertEquals("compute_dtype must be float32 (the default: compute in F32) or recipe (round to the recipe's"
                + " dtype where mergekit does), got 'f8'", e.getMessage());
    }
}
