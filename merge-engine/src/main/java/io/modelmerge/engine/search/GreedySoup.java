package io.modelmerge.engine.search;

import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.storage.blob.LocalDirectories;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.function.Consumer;

/**
 * Greedy soup (Wortsman et al., "Model soups", 2022): every ingredient is scored on held-out data, then, best
 * first, each is added to the soup only if the uniform average with it scores strictly higher than the soup
 * without it. At most 2N − 1 evaluations for N ingredients (fewer where scores are cached). Candidate soups are
 * merged into a staging directory beside the output and removed when the search ends; the chosen soup becomes
 * the output, with {@value #REPORT} recording every score and decision.
 */
public final class GreedySoup {
    public static final String REPORT = "greedy_soup.json";

    /** What became of an ingredient. */
    public enum Outcome {
        /** The best-scoring ingredient: the soup starts with it. */
        FIRST,
        /** Added: the soup with it scored strictly higher. */
        KEPT,
        /** Left out: the soup with it scored no higher. */
        REJECTED,
        /** Left out: its own evaluation, or its soup's, gave no score. */
        FAILED
    }

    /** One ingredient's scores (null where not scored) and outcome, with why it failed where it did. */
    public record Decision(String ingredient, Double ownScore, Double soupScore, Outcome outcome, String error) {
    }

    /** The soup chosen, its score, the decisions in the order they were made, and the evaluations sent. */
    public record Result(List<String> soup, double score, List<Decision> decisions, int evaluations,
                         String evaluator) {
        public byte[] toJson() {
            return StagedCandidates.report(this);
        }
    }

    private final MergeExecutor executor;
    private final CandidateScorer scorer;
    private final Consumer<SearchProgress> progress;

    /**
     * @param timeout how long each evaluation may take (the deadline a candidate carries)
     */
    public GreedySoup(MergeExecutor executor, Evaluator evaluator, ScoreCache cache, Duration timeout, Clock clock) {
        this(executor, evaluator, cache, timeout, clock, p -> { });
    }

    /** As the other constructor, telling {@code progress} after each candidate is scored. */
    public GreedySoup(MergeExecutor executor, Evaluator evaluator, ScoreCache cache, Duration timeout, Clock clock,
                      Consumer<SearchProgress> progress) {
        this.executor = executor;
        this.scorer = new CandidateScorer(executor, evaluator, cache, timeout, clock);
        this.progress = progress;
    }

    /** Chooses the soup of {@code ingredients} (model references, as recipes name them), written to {@code out}. */
    public Result run(List<String> ingredients, Path out) throws IOException, RecipeException {
        return run(ingredients, Map.of(), out);
    }

    /**
     * As {@link #run(List, Path)}, where an ingredient's files are at {@code locations.get(ingredient)} (a registry
     * ref's storage) or, when it has none there, at the ingredient itself.
     */
    public Result run(List<String> ingredients, Map<String, String> locations, Path out)
            throws IOException, RecipeException {
        if (ingredients.isEmpty()) {
            throw new RecipeException("greedy_soup needs at least one ingredient");
        }
        Path staging = StagedCandidates.create(out, "soup");
        try {
            return search(ingredients, locations, out, staging);
        } finally {
            LocalDirectories.delete(staging);
        }
    }

    private Result search(List<String> ingredients, Map<String, String> locations, Path out, Path staging)
            throws IOException, RecipeException {
        int sentBefore = scorer.evaluations();
        List<Decision> decisions = new ArrayList<>();
        Map<String, Double> own = new LinkedHashMap<>();
        int total = 2 * ingredients.size() - 1;
        int done = 0;
        OptionalDouble top = OptionalDouble.empty();
        for (String ingredient : ingredients) {
            CandidateScorer.Scored scored = scorer.score(ingredient, locations.getOrDefault(ingredient, ingredient));
            if (scored.score().isPresent()) {
                double value = scored.score().get().value();
                own.put(ingredient, value);
                top = OptionalDouble.of(top.isPresent() ? Math.max(top.getAsDouble(), value) : value);
            } else {
                decisions.add(new Decision(ingredient, null, null, Outcome.FAILED, scored.error()));
                total--; // one soup fewer to try
            }
            progress.accept(new SearchProgress(++done, total, top));
        }
        if (own.isEmpty()) {
            throw new RecipeException("greedy_soup: no ingredient could be scored by " + scorer.evaluatorId() + " ("
                    + decisions.getFirst().error() + ")");
        }
        // best first; equal scores keep the order given
        List<String> order = own.keySet().stream()
                .sorted(Comparator.comparingDouble((String i) -> own.get(i)).reversed()).toList();
        List<String> soup = new ArrayList<>(List.of(order.getFirst()));
        double best = own.get(order.getFirst());
        Path bestDir = null;
        decisions.add(new Decision(order.getFirst(), best, best, Outcome.FIRST, null));
        for (String ingredient : order.subList(1, order.size())) {
            List<String> tried = new ArrayList<>(soup);
            tried.add(ingredient);
            Path dir = staging.resolve("candidate-" + decisions.size());
            executor.run(RecipeParser.parse(uniformAverage(tried)).withLocations(locations), dir);
            CandidateScorer.Scored scored = scorer.score(dir.getFileName().toString(), dir.toString());
            Optional<Score> score = scored.score();
            if (score.isEmpty()) {
                decisions.add(new Decision(ingredient, own.get(ingredient), null, Outcome.FAILED, scored.error()));
            } else if (score.get().value() > best) {
                soup = tried;
                best = score.get().value();
                bestDir = dir;
                decisions.add(new Decision(ingredient, own.get(ingredient), best, Outcome.KEPT, null));
            } else {
                decisions.add(new Decision(ingredient, own.get(ingredient), score.get().value(), Outcome.REJECTED,
                        null));
            }
            progress.accept(new SearchProgress(++done, total, OptionalDouble.of(best)));
        }
        if (bestDir != null) {
            Files.move(bestDir, out);
        } else {
            executor.run(RecipeParser.parse(uniformAverage(soup)).withLocations(locations), out);
        }
        Result result = new Result(soup, best, decisions, scorer.evaluations() - sentBefore, scorer.evaluatorId());
        Files.write(out.resolve(REPORT), result.toJson());
        return result;
    }

    /** A linear merge giving each model weight 1 (normalised: the uniform average). */
    static String uniformAverage(List<String> models) {
        StringBuilder yaml = new StringBuilder("merge_method: linear\nmodels:\n");
        for (String model : models) {
            yaml.append("  - model: ").append(StagedCandidates.quoted(model))
                    .append("\n    parameters: {weight: 1.0}\n");
        }
        return yaml.toString();
    }
}
