package io.modelmerge.engine.search;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * CMA-ES over a linear merge's weights where the optimum is known: model i holds the unit vector e_i, so the
 * merge (normalize: false) holds the weights themselves, and the scripted evaluator scores −|w − w*|².
 */
class RecipeSearchTest {
    private static final double[] OPTIMUM = {0.3, 0.7, 0.5};

    @TempDir
    Path dir;

    private static float[] weights(Path model) {
        try (SafetensorsFile file = SafetensorsFile.open(model.resolve("model.safetensors"))) {
            return Floats.widen(file.tensor("w"));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static final class Quadratic implements Evaluator {
        int calls;

        @Override
        public String id() {
            return "quadratic@1";
        }

        @Override
        public synchronized Score score(Candidate candidate) {
            calls++;
            float[] w = weights(Path.of(candidate.location()));
            double loss = 0;
            for (int i = 0; i < OPTIMUM.length; i++) {
                loss += (w[i] - OPTIMUM[i]) * (w[i] - OPTIMUM[i]);
            }
            return new Score(-loss, Map.of());
        }
    }

    private RecipeSearch.Space space() throws Exception {
        List<TensorSpec> specs = List.of(new TensorSpec("w", DType.F32, new long[] {3}));
        List<String> models = new ArrayList<>();
        for (int m = 0; m < 3; m++) {
            int hot = m;
            models.add(SyntheticCheckpoints.write(dir.resolve("e" + m), specs, (t, i) -> i == hot ? 1 : 0).toString());
        }
        List<RecipeSearch.Dimension> dimensions = List.of(new RecipeSearch.Dimension("weight", 0, 0, 1),
                new RecipeSearch.Dimension("weight", 1, 0, 1), new RecipeSearch.Dimension("weight", 2, 0, 1));
        return new RecipeSearch.Space("linear", Optional.empty(), models, Map.of("normalize", "false"), dimensions);
    }

    private MergeExecutor executor() {
        return new MergeExecutor(MergeOptions.defaults().withThreads(1).withCache(dir.resolve("cache"), 1L << 30),
                p -> { }, new AtomicBoolean());
    }

    private RecipeSearch search(Evaluator evaluator) {
        return new RecipeSearch(executor(), evaluator, ScoreCache.inMemory(), Duration.ofMinutes(1), Clock.systemUTC());
    }

    /**
     * Within 0.02 of the optimum in every weight after at most 150 evaluations (CMA-ES converges geometrically on
     * a sphere; 3 dimensions from the middle of [0, 1]); the output holds the best merge and its recipe, which
     * merges to the same weights again.
     */
    @Test
    void cmaEsFindsAKnownOptimumWithinItsBudget() throws Exception {
        RecipeSearch.Space space = space();
        Quadratic evaluator = new Quadratic();
        Path out = dir.resolve("evolved");
        RecipeSearch.Result result = search(evaluator).run(space, 150, 7, out);
        assertTrue(result.trials().size() <= 150, "trials: " + result.trials().size());
        assertEquals(evaluator.calls, result.evaluations());
        for (int i = 0; i < OPTIMUM.length; i++) {
            assertEquals(OPTIMUM[i], result.best()[i], 0.02, "weight " + i + " of " + result.trials().size()
                    + " trials");
        }
        float[] merged = weights(out);
        for (int i = 0; i < OPTIMUM.length; i++) {
            assertEquals((float) result.best()[i], merged[i], 1e-6);
        }
        String recipe = Files.readString(out.resolve(RecipeSearch.BEST_RECIPE));
        Path again = dir.resolve("again");
        executor().run(RecipeParser.parse(recipe), again);
        assertArrayEquals(merged, weights(again));
        assertTrue(Files.exists(out.resolve(RecipeSearch.REPORT)));
        try (Stream<Path> left = Files.list(dir)) {
            assertFalse(left.anyMatch(p -> p.getFileName().toString().contains("evolve-candidates")));
        }
    }

    /**
     * The same seed proposes the same candidates in the same order, one at a time or three at once; another seed
     * does not.
     */
    @Test
    void aSeedReproducesTheSequenceOfCandidates() throws Exception {
        RecipeSearch.Space space = space();
        List<RecipeSearch.Trial> first = search(new Quadratic()).run(space, 30, 11, dir.resolve("a")).trials();
        List<RecipeSearch.Trial> second = search(new Quadratic()).run(space, 30, 11, 3, dir.resolve("b")).trials();
        List<RecipeSearch.Trial> other = search(new Quadratic()).run(space, 30, 12, dir.resolve("c")).trials();
        assertEquals(first.size(), second.size());
        for (int t = 0; t < first.size(); t++) {
            assertArrayEquals(first.get(t).x(), second.get(t).x(), "trial " + t);
        }
        assertFalse(java.util.Arrays.equals(first.get(1).x(), other.get(1).x()), "seed 12 proposed what 11 did");
    }

    @Test
    void aBadSpaceIsRefusedBeforeAnyMerge() throws Exception {
        RecipeSearch.Space space = space();
        RecipeSearch.Space unknown = new RecipeSearch.Space("no_such_method", Optional.empty(), space.models(),
                Map.of(), space.dimensions());
        RecipeException e = assertThrows(RecipeException.class, () -> search(new Quadratic()).run(unknown, 10, 1,
                dir.resolve("bad")));
        assertTrue(e.getMessage().contains("no_such_method"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new RecipeSearch.Dimension("weight", 0, 1, 1));
    }
}
