package io.modelmerge.engine.method;

import static io.modelmerge.engine.method.MethodHarness.merge;
import static io.modelmerge.engine.method.MethodHarness.plus;
import static io.modelmerge.engine.method.MethodReferences.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.modelmerge.engine.recipe.RecipeException;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class PcbAndSceTest {
    private static final List<Map<String, Object>> ONE = List.of(Map.of());


    @Test
    void pcbWithOneModelAndRatioOneIsTheBasePlusLambdaTau() {
        // one task: β = exp(minmax(|τ|)²)·tanh(τ²) >= 0 is smallest where τ = 0, so every other entry has a scale > 0
        // and Σ scale·τ / Σ scale = τ; under 10,000 entries nothing is clipped
        float[] base = {1, 2, 3, 4, 5, 6};
        float[] tau = {0.5f, -0.25f, 0f, 1.5f, -2f, 0.125f};
        float[] out = merge(new PcbMerge(), base, new float[][] {plus(base, tau)}, ONE,
                Map.of("pcb_ratio", 1.0, "lambda", 0.5), 0, 4, 2);
        float[] expected = new float[base.length];
        for (int i = 0; i < base.length; i++) {
            expected[i] = base[i] + 0.5f * tau[i];
        }
        assertArrayEquals(expected, out, 1e-6f);
    }

    @Test
    void pcbByHandWithTwoTasks() {
        // τ₁ = [1, -1, 2], τ₂ = [1, 1, 0], ratio 1, λ 1. Σ = [2, 0, 2]. minmax|τ₁| = [0, 0, 1], minmax|τ₂| = [1, 1, 0].
        // β₁ = [e⁰·tanh 2, e⁰·tanh 0, e²·tanh 4] = [.9640, 0, 7.3404]; β₂ = [e²·tanh 2, e²·tanh 0, e⁰·tanh 0] = [7.1233, 0, 0]
        // scales: β₁/7.3404 = [.13133, 0, 1]; β₂/7.1233 = [1, 0, 0]
        // entry 0: (.13133·1 + 1·1)/1.13133 = 1; entry 1: 0/1e-12 = 0; entry 2: (1·2 + 0)/1 = 2
        float[] base = {0, 0, 0};
        float[] out = merge(new PcbMerge(), base, new float[][] {{1, -1, 2}, {1, 1, 0}}, List.of(Map.of(), Map.of()),
                Map.of("pcb_ratio", 1.0));
        assertArrayEquals(new float[] {1, 0, 2}, out, 1e-6f);
        // ratio 0.5 over 3 entries: the threshold is β sorted at ⌊1.5⌋ = 1: β₁ → .9640, β₂ → 0
        // scales₁ = [0, 0, 1], scales₂ = [1, 0, 0]: entry 0 = τ₂ = 1, entry 2 = τ₁ = 2
        float[] half = merge(new PcbMerge(), base, new float[][] {{1, -1, 2}, {1, 1, 0}}, List.of(Map.of(), Map.of()),
                Map.of("pcb_ratio", 0.5));
        assertArrayEquals(new float[] {1, 0, 2}, half, 1e-6f);
    }

    @Test
    void pcbMatchesTheAuthorsAlgorithmOnTensorsLargeEnoughToClip() {
        Random random = new Random(12);
        int n = 25_000; // 0.01% of 25,000 = 2 entries clipped at each end
        float[][] inputs = MethodReferences.baseAndFineTunes(random, n, 0.01, 0.02, 0.01);
        float[] base = inputs[0];
        float[][] models = java.util.Arrays.copyOfRange(inputs, 1, inputs.length);
        List<Map<String, Object>> none = List.of(Map.of(), Map.of(), Map.of());
        for (String clip : List.of("symmetric", "reference")) {
            float[] out = merge(new PcbMerge(), base, models, none, Map.of("pcb_ratio", 0.2, "lambda", 0.8, "pcb_clip", clip),
                    0, 1000, 3);
            assertClose(MethodReferences.pcb(base, models, 0.2, 0.8, clip.equals("reference")), out, 2e-5);
        }
    }

    @Test
    void pcbRatioOutsideItsRangeIsRefused() {
        assertThrows(RecipeException.class, () -> new PcbMerge().check(
                new TensorParameters("w", 4, ONE, Map.of("pcb_ratio", 0.0, "lambda", 1.0, "pcb_clip", "symmetric"), 0)));
    }

    @Test
    void sceByHand() {
        // τ₁ = [1, -2, 0], τ₂ = [3, 2, -1]; all selected. Weights: mean τ² = 5/3 and 14/3 → 5/19 and 14/19.
        // entry 0: both +: (5·1 + 14·3)/19 = 47/19; entry 1: Σ = 0 elects +, only τ₂ agrees: 2;
        // entry 2: Σ = -1 elects −, τ₁ = 0 agrees with neither: -1
        float[] out = merge(new SceMerge(), new float[3], new float[][] {{1, -2, 0}, {3, 2, -1}}, List.of(Map.of(), Map.of()), Map.of());
        assertArrayEquals(new float[] {47f / 19, 2, -1}, out, 1e-6f);
    }

    @Test
    void sceOfIdenticalFineTunesReturnsThemAndMatchesMergekitsAlgorithm() {
        Random random = new Random(13);
        int n = 4000;
        float[] base = MethodReferences.random(random, n, 1);
        float[] tuned = plus(base, MethodReferences.random(random, n, 0.1));
        List<Map<String, Object>> none = List.of(Map.of(), Map.of(), Map.of());
        assertArrayEquals(tuned, merge(new SceMerge(), base, new float[][] {tuned, tuned, tuned}, none, Map.of()), 1e-6f);
        float[][] models = {plus(base, MethodReferences.random(random, n, 0.1)), plus(base, MethodReferences.random(random, n, 0.1)),
                plus(base, MethodReferences.random(random, n, 0.3))};
        for (double topk : new double[] {1.0, 0.3, 0.0}) {
            assertClose(MethodReferences.sce(base, models, topk),
                    merge(new SceMerge(), base, models, none, Map.of("select_topk", topk), 0, 300, 3), 1e-5);
        }
    }
}
