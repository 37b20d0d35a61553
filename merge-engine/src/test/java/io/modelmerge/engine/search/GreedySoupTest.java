package io.modelmerge.engine.search;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.kernel.Floats;
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
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.DoubleUnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Greedy soup against a scripted evaluator that scores a model by the value its one tensor holds. */
class GreedySoupTest {
    @TempDir
    Path dir;

    /** Scores the mean of tensor "w" by a function, and records every candidate offered. */
    private static final class Scripted implements Evaluator {
        final List<Candidate> offered = new ArrayList<>();
        private final DoubleUnaryOperator score;
        private final double failAt;

        Scripted(DoubleUnaryOperator score, double failAt) {
            this.score = score;
            this.failAt = failAt;
        }

        @Override
        public String id() {
            return "scripted@1";
        }

        @Override
        public Score score(Candidate candidate) throws EvaluationFailedException {
            offered.add(candidate);
            double mean = mean(Path.of(candidate.location()));
            if (mean == failAt) {
                throw new EvaluationFailedException("evaluator answered 500 for " + candidate.ref());
            }
            return new Score(score.applyAsDouble(mean), Map.of("mean", mean));
        }
    }

    static double mean(Path model) {
        try (SafetensorsFile file = SafetensorsFile.open(model.resolve("model.safetensors"))) {
            float[] w = Floats.widen(file.tensor("w"));
            double sum = 0;
            for (float v : w) {
                sum += v;
            }
            return sum / w.length;
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private String model(String name, double value) throws Exception {
        List<TensorSpec> specs = List.of(new TensorSpec("w", DType.F32, new long[] {4, 4}));
        return SyntheticCheckpoints.write(dir.resolve(name), specs, (tensor, i) -> value).toString();
    }

    private GreedySoup soup(Evaluator evaluator, ScoreCache cache) {
        MergeExecutor executor = new MergeExecutor(MergeOptions.defaults().withThreads(1)
                .withCache(dir.resolve("cache"), 1L << 30), p -> { }, new AtomicBoolean());
        return new GreedySoup(executor, evaluator, cache, Duration.ofMinutes(1), Clock.systemUTC());
    }

    /**
     * Score −(mean − 2.4)²: alone, c (2.0) ranks first, then b (3.0), a (1.0), d (10.0); {c, b} (2.5) beats c,
     * {c, b, a} (2.0) and {c, b, d} (5.0) do not. Seven evaluations: 2N − 1.
     */
    @Test
    void ingredientsAreTriedBestFirstAndKeptOnlyWhenTheSoupImproves() throws Exception {
        String a = model("a", 1.0);
        String b = model("b", 3.0);
        String c = model("c", 2.0);
        String d = model("d", 10.0);
        Scripted evaluator = new Scripted(m -> -(m - 2.4) * (m - 2.4), Double.NaN);
        Path out = dir.resolve("soup");
        GreedySoup.Result result = soup(evaluator, ScoreCache.inMemory()).run(List.of(a, b, c, d), out);

        assertEquals(List.of(c, b), result.soup());
        assertEquals(-(2.5 - 2.4) * (2.5 - 2.4), result.score(), 1e-12);
        assertEquals(List.of(GreedySoup.Outcome.FIRST, GreedySoup.Outcome.KEPT, GreedySoup.Outcome.REJECTED,
                GreedySoup.Outcome.REJECTED), result.decisions().stream().map(GreedySoup.Decision::outcome).toList());
        assertEquals(List.of(c, b, a, d), result.decisions().stream().map(GreedySoup.Decision::ingredient).toList());
        assertEquals(7, result.evaluations());
        assertEquals(7, evaluator.offered.size());
        assertTrue(evaluator.offered.stream().allMatch(x -> x.split().equals(Candidate.SELECTION_SPLIT)),
                "only the selection split is offered");
        assertEquals(2.5, mean(out), 1e-6);
        var report = new ObjectMapper().readTree(out.resolve(GreedySoup.REPORT).toFile());
        assertEquals("scripted@1", report.get("evaluator").asText());
        assertEquals("REJECTED", report.get("decisions").get(2).get("outcome").asText());
        try (Stream<Path> left = Files.list(dir)) {
            assertFalse(left.anyMatch(p -> p.getFileName().toString().contains("soup-candidates")),
                    "candidates are removed after the search");
        }
    }

    /** An equal score is no improvement: under a constant score only the first ingredient is kept. */
    @Test
    void aSoupThatScoresTheSameIsNotKept() throws Exception {
        List<String> models = List.of(model("a", 1.0), model("b", 2.0), model("c", 3.0));
        Scripted evaluator = new Scripted(m -> 0.5, Double.NaN);
        GreedySoup.Result result = soup(evaluator, ScoreCache.inMemory()).run(models, dir.resolve("soup"));
        assertEquals(List.of(models.getFirst()), result.soup());
        assertEquals(5, result.evaluations());
        assertEquals(1.0, mean(dir.resolve("soup")), 0);
    }

    /** Content scored before is not sent again: identical ingredients, and a second search over the same cache. */
    @Test
    void cachedScoresAreNotRequestedAgain() throws Exception {
        String a = model("a", 1.0);
        String twin = model("a-twin", 1.0);
        String b = model("b", 3.0);
        Scripted evaluator = new Scripted(m -> -Math.abs(m - 2), Double.NaN);
        ScoreCache cache = ScoreCache.inMemory();
        GreedySoup.Result first = soup(evaluator, cache).run(List.of(a, twin, b), dir.resolve("first"));
        assertEquals(first.evaluations(), evaluator.offered.size());
        assertEquals(evaluator.offered.size(),
                evaluator.offered.stream().map(Candidate::contentDigest).distinct().count(),
                "no content was sent twice");
        assertTrue(first.evaluations() < 5, "the twin's own score came from the cache: " + first.evaluations());
        int sent = evaluator.offered.size();
        GreedySoup.Result second = soup(evaluator, cache).run(List.of(a, twin, b), dir.resolve("second"));
        assertEquals(0, second.evaluations());
        assertEquals(sent, evaluator.offered.size());
        assertEquals(first.soup(), second.soup());
    }

    /** A failed evaluation fails that candidate; the search goes on without it. */
    @Test
    void aFailedEvaluationLeavesThatIngredientOut() throws Exception {
        String a = model("a", 1.0);
        String b = model("b", 2.0);
        String c = model("c", 3.0);
        Scripted evaluator = new Scripted(m -> -Math.abs(m - 2.2), 3.0);
        GreedySoup.Result result = soup(evaluator, ScoreCache.inMemory()).run(List.of(a, b, c), dir.resolve("soup"));
        var failed = result.decisions().stream().filter(x -> x.outcome() == GreedySoup.Outcome.FAILED).toList();
        assertEquals(1, failed.size());
        assertEquals(c, failed.getFirst().ingredient());
        assertTrue(failed.getFirst().error().contains("500"), failed.getFirst().error());
        assertEquals(List.of(b), result.soup()); // {b, a} = 1.5 scores below b alone
    }
}
