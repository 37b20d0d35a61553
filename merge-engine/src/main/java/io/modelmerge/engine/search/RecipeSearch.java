package io.modelmerge.engine.search;

import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.storage.blob.LocalDirectories;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;

/**
 * Recipe search ({@code evolve}, after "Evolutionary Optimization of Model Merging Recipes", Akiba et al. 2024):
 * CMA-ES ({@link Cmaes}, seeded) over a recipe's numeric parameters, each candidate merged into a staging
 * directory beside the output and scored by an evaluator (scores cached by content, so a repeated candidate is
 * not scored twice); a generation's candidates may be merged and scored in parallel. The best candidate becomes
 * the output, beside its recipe as plain mergekit YAML ({@value #BEST_RECIPE}) and {@value #REPORT} with every
 * candidate's parameters and score. A failed evaluation scores the candidate worst.
 */
public final class RecipeSearch {
    public static final String REPORT = "evolve.json";
    public static final String BEST_RECIPE = "evolved_recipe.yml";

    /**
     * One searched number: a parameter of one model ({@code model} its index) or of the whole merge
     * ({@code model} −1, such as slerp's {@code t}), between bounds; {@code group} is its point of the parameter's
     * gradient over the layers where it is searched per layer group (0 where it is one value).
     */
    public record Dimension(String parameter, int model, int group, double min, double max) {
        public Dimension {
            if (!(min < max)) {
                throw new IllegalArgumentException("parameter '" + parameter + "': bounds [" + min + ", " + max
                        + "] are empty");
            }
        }

        /** A parameter searched as one value for the whole model. */
        public Dimension(String parameter, int model, double min, double max) {
            this(parameter, model, 0, min, max);
        }
    }

    /**
     * What is searched: the method, the base and models, the merge's fixed parameters and each model's (YAML
     * scalars, such as {@code normalize: false}), and the searched dimensions.
     */
    public record Space(String mergeMethod, Optional<String> baseModel, List<String> models,
                        Map<String, String> fixed, List<Map<String, String>> modelFixed, List<Dimension> dimensions) {
        public Space {
            models = List.copyOf(models);
            fixed = Map.copyOf(fixed);
            modelFixed = modelFixed.stream().map(Map::copyOf).toList();
            dimensions = List.copyOf(dimensions);
            if (modelFixed.size() != models.size()) {
                throw new IllegalArgumentException(modelFixed.size() + " models' fixed parameters for "
                        + models.size() + " models");
            }
            for (Dimension d : dimensions) {
                if (d.model() < -1 || d.model() >= models.size()) {
                    throw new IllegalArgumentException("parameter '" + d.parameter() + "' names model " + d.model()
                            + " of " + models.size());
                }
            }
        }

        /** A space whose models have no fixed parameters of their own. */
        public Space(String mergeMethod, Optional<String> baseModel, List<String> models, Map<String, String> fixed,
                     List<Dimension> dimensions) {
            this(mergeMethod, baseModel, models, fixed, models.stream().map(m -> Map.<String, String>of()).toList(),
                    dimensions);
        }

        /** The point in the middle of every dimension's bounds. */
        public double[] middle() {
            return dimensions.stream().mapToDouble(d -> (d.min() + d.max()) / 2).toArray();
        }

        /** The mergekit YAML of the candidate at {@code x}. */
        public String recipe(double[] x) {
            StringBuilder yaml = new StringBuilder("merge_method: ").append(mergeMethod).append('\n');
            baseModel.ifPresent(b -> yaml.append("base_model: ").append(StagedCandidates.quoted(b)).append('\n'));
            Map<String, String> global = new java.util.TreeMap<>(fixed);
            global.putAll(searched(x, -1));
            if (!global.isEmpty()) {
                yaml.append("parameters:\n");
                global.forEach((k, v) -> yaml.append("  ").append(k).append(": ").append(v).append('\n'));
            }
            yaml.append("models:\n");
            for (int m = 0; m < models.size(); m++) {
                yaml.append("  - model: ").append(StagedCandidates.quoted(models.get(m))).append('\n');
                Map<String, String> parameters = new java.util.TreeMap<>(modelFixed.get(m));
                parameters.putAll(searched(x, m));
                if (!parameters.isEmpty()) {
                    yaml.append("    parameters:\n");
                    parameters.forEach((k, v) -> yaml.append("      ").append(k).append(": ").append(v).append('\n'));
                }
            }
            return yaml.toString();
        }

        /** Model {@code model}'s searched parameters at {@code x}: one number, or a gradient of its groups' points. */
        private Map<String, String> searched(double[] x, int model) {
            Map<String, java.util.SortedMap<Integer, String>> points = new LinkedHashMap<>();
            for (int i = 0; i < dimensions.size(); i++) {
                Dimension d = dimensions.get(i);
                if (d.model() == model) {
                    points.computeIfAbsent(d.parameter(), p -> new java.util.TreeMap<>())
                            .put(d.group(), StagedCandidates.number(x[i]));
                }
            }
            Map<String, String> values = new LinkedHashMap<>();
            points.forEach((parameter, byGroup) -> values.put(parameter, byGroup.size() == 1
                    ? byGroup.values().iterator().next() : "[" + String.join(", ", byGroup.values()) + "]"));
            return values;
        }
    }

    /** One candidate: its parameters, and its score (null where its evaluation failed). */
    public record Trial(double[] x, Double score, String error) {
    }

    /** The best parameters, their score and recipe, every trial in order, and the evaluations sent. */
    public record Result(double[] best, double score, String recipe, List<Trial> trials, int evaluations,
                         String evaluator, long seed) {
        public byte[] toJson() {
            return StagedCandidates.report(this);
        }
    }

    private final MergeExecutor executor;
    private final CandidateScorer scorer;
    private final Consumer<SearchProgress> progress;

    public RecipeSearch(MergeExecutor executor, Evaluator evaluator, ScoreCache cache, Duration timeout, Clock clock) {
        this(executor, evaluator, cache, timeout, clock, p -> { });
    }

    /** As the other constructor, telling {@code progress} after each candidate is scored. */
    public RecipeSearch(MergeExecutor executor, Evaluator evaluator, ScoreCache cache, Duration timeout, Clock clock,
                        Consumer<SearchProgress> progress) {
        this.executor = executor;
        this.scorer = new CandidateScorer(executor, evaluator, cache, timeout, clock);
        this.progress = progress;
    }

    /**
     * Searches {@code space} with at most {@code budget} evaluations from the middle of the bounds (step a third
     * of each range), CMA-ES seeded with {@code seed}, one candidate at a time, and writes the best to
     * {@code out}.
     */
    public Result run(Space space, int budget, long seed, Path out) throws IOException, RecipeException {
        return run(space, budget, seed, 1, out);
    }

    /**
     * As {@link #run(Space, int, long, Path)}, merging and scoring up to {@code parallel} candidates of a
     * generation at once: the same candidates, in the same order, as one at a time.
     */
    public Result run(Space space, int budget, long seed, int parallel, Path out) throws IOException, RecipeException {
        return run(space, Map.of(), budget, seed, parallel, out);
    }

    /**
     * As {@link #run(Space, int, long, int, Path)}, where a model's files are at {@code locations.get(model)} (a
     * registry ref's storage) or, when it has none there, at the model itself; the written recipe names the models
     * as the space does.
     */
    public Result run(Space space, Map<String, String> locations, int budget, long seed, int parallel, Path out)
            throws IOException, RecipeException {
        if (parallel < 1) {
            throw new RecipeException("evolve: parallel must be at least 1, got " + parallel);
        }
        if (space.dimensions().isEmpty()) {
            throw new RecipeException("evolve: nothing to search (no dimensions)");
        }
        if (budget < 2) {
            throw new RecipeException("evolve: a budget of " + budget + " evaluations is too small");
        }
        RecipeParser.parse(space.recipe(space.middle())); // a bad method or parameter fails before any merge
        Path staging = StagedCandidates.create(out, "evolve");
        try {
            return search(space, locations, budget, seed, parallel, out, staging);
        } finally {
            LocalDirectories.delete(staging);
        }
    }

    /** One candidate's merge and score: where it was merged, and the trial it records. */
    private record Evaluated(Path dir, Trial trial) {
    }

    private Result search(Space space, Map<String, String> locations, int budget, long seed, int parallel, Path out,
                          Path staging)
            throws IOException, RecipeException {
        int n = space.dimensions().size();
        double[] start = new double[n];
        double[] lower = new double[n];
        double[] upper = new double[n];
        Arrays.fill(start, 0.5);
        Arrays.fill(upper, 1);
        // the search runs on each dimension's bounds scaled to [0, 1], from the middle with a step of a third
        Cmaes cmaes = new Cmaes(start, 1.0 / 3, lower, upper, seed);
        int sentBefore = scorer.evaluations();
        List<Trial> trials = new ArrayList<>();
        Path bestDir = null;
        double bestScore = Double.NEGATIVE_INFINITY;
        double[] best = null;
        ExecutorService pool = Executors.newFixedThreadPool(parallel,
                Thread.ofPlatform().daemon().name("evolve-", 0).factory());
        try {
            while (trials.size() < budget) {
                double[][] points = cmaes.ask();
                int count = Math.min(points.length, budget - trials.size());
                List<Future<Evaluated>> futures = new ArrayList<>();
                for (int k = 0; k < count; k++) {
                    double[] x = unscaled(space, points[k]);
                    Path dir = staging.resolve("candidate-" + (trials.size() + k));
                    futures.add(pool.submit(() -> evaluate(space, locations, x, dir)));
                }
                double[] scores = new double[points.length];
                for (int k = 0; k < count; k++) {
                    Evaluated e = await(futures.get(k));
                    trials.add(e.trial());
                    Double score = e.trial().score();
                    scores[k] = score == null ? -Double.MAX_VALUE : score;
                    if (score != null && score > bestScore) {
                        if (bestDir != null) {
                            LocalDirectories.delete(bestDir);
                        }
                        bestDir = e.dir();
                        bestScore = score;
                        best = e.trial().x();
                    } else {
                        LocalDirectories.delete(e.dir());
                    }
                    progress.accept(new SearchProgress(trials.size(), budget, bestDir == null
                            ? OptionalDouble.empty() : OptionalDouble.of(bestScore)));
                }
                if (count < points.length) {
                    break; // the budget ends inside a generation: nothing more to learn from
                }
                cmaes.tell(scores);
            }
        } finally {
            pool.shutdownNow();
        }
        if (bestDir == null) {
            throw new RecipeException("evolve: none of " + trials.size() + " candidates could be scored by "
                    + scorer.evaluatorId() + " (" + trials.getFirst().error() + ")");
        }
        Files.move(bestDir, out);
        String recipe = space.recipe(best);
        Files.writeString(out.resolve(BEST_RECIPE), recipe, StandardCharsets.UTF_8);
        Result result = new Result(best, bestScore, recipe, trials, scorer.evaluations() - sentBefore,
                scorer.evaluatorId(), seed);
        Files.write(out.resolve(REPORT), result.toJson());
        return result;
    }

    private Evaluated evaluate(Space space, Map<String, String> locations, double[] x, Path dir)
            throws IOException, RecipeException {
        executor.run(RecipeParser.parse(space.recipe(x)).withLocations(locations), dir);
        CandidateScorer.Scored scored = scorer.score(dir.getFileName().toString(), dir.toString());
        return new Evaluated(dir, new Trial(x, scored.score().map(Score::value).orElse(null), scored.error()));
    }

    private static Evaluated await(Future<Evaluated> future) throws IOException, RecipeException {
        try {
            return future.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("evolve interrupted", e);
        } catch (ExecutionException e) {
            switch (e.getCause()) {
                case IOException io -> throw io;
                case RecipeException recipe -> throw recipe;
                case RuntimeException runtime -> throw runtime;
                default -> throw new IllegalStateException(e.getCause());
            }
        }
    }

    /** A point of the scaled search space as the dimensions' own values. */
    private static double[] unscaled(Space space, double[] point) {
        double[] x = new double[point.length];
        for (int i = 0; i < x.length; i++) {
            Dimension d = space.dimensions().get(i);
            x[i] = d.min() + point[i] * (d.max() - d.min());
        }
        return x;
    }
}
