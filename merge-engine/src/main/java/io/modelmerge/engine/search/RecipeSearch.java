package io.modelmerge.engine.search;

import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.commons.math3.exception.TooManyEvaluationsException;
import org.apache.commons.math3.optim.InitialGuess;
import org.apache.commons.math3.optim.MaxEval;
import org.apache.commons.math3.optim.SimpleBounds;
import org.apache.commons.math3.optim.nonlinear.scalar.GoalType;
import org.apache.commons.math3.optim.nonlinear.scalar.ObjectiveFunction;
import org.apache.commons.math3.optim.nonlinear.scalar.noderiv.CMAESOptimizer;
import org.apache.commons.math3.random.MersenneTwister;

/**
 * Recipe search ({@code evolve}, after "Evolutionary Optimization of Model Merging Recipes", Akiba et al. 2024):
 * CMA-ES (Apache Commons Math, seeded) over a recipe's numeric parameters, each candidate merged into a staging
 * directory beside the output and scored by an evaluator (scores cached by content, so a repeated candidate is
 * not scored twice). The best candidate becomes the output, beside its recipe as plain mergekit YAML
 * ({@value #BEST_RECIPE}) and {@value #REPORT} with every candidate's parameters and score. Candidates are scored
 * one after another (the optimizer asks for one at a time); a failed evaluation scores the candidate worst.
 */
public final class RecipeSearch {
    public static final String REPORT = "evolve.json";
    public static final String BEST_RECIPE = "evolved_recipe.yml";

    /**
     * One searched number: a parameter of one model ({@code model} its index) or of the whole merge
     * ({@code model} −1, such as slerp's {@code t}), between bounds.
     */
    public record Dimension(String parameter, int model, double min, double max) {
        public Dimension {
            if (!(min < max)) {
                throw new IllegalArgumentException("parameter '" + parameter + "': bounds [" + min + ", " + max
                        + "] are empty");
            }
        }
    }

    /**
     * What is searched: the method, the base and models, the merge's fixed parameters (YAML scalars, such as
     * {@code normalize: false}), and the searched dimensions.
     */
    public record Space(String mergeMethod, Optional<String> baseModel, List<String> models,
                        Map<String, String> fixed, List<Dimension> dimensions) {
        public Space {
            models = List.copyOf(models);
            fixed = Map.copyOf(fixed);
            dimensions = List.copyOf(dimensions);
            for (Dimension d : dimensions) {
                if (d.model() < -1 || d.model() >= models.size()) {
                    throw new IllegalArgumentException("parameter '" + d.parameter() + "' names model " + d.model()
                            + " of " + models.size());
                }
            }
        }

        /** The mergekit YAML of the candidate at {@code x}. */
        public String recipe(double[] x) {
            StringBuilder yaml = new StringBuilder("merge_method: ").append(mergeMethod).append('\n');
            baseModel.ifPresent(b -> yaml.append("base_model: ").append(StagedCandidates.quoted(b)).append('\n'));
            Map<String, String> global = new LinkedHashMap<>(fixed);
            for (int i = 0; i < dimensions.size(); i++) {
                if (dimensions.get(i).model() < 0) {
                    global.put(dimensions.get(i).parameter(), StagedCandidates.number(x[i]));
                }
            }
            if (!global.isEmpty()) {
                yaml.append("parameters:\n");
                global.forEach((k, v) -> yaml.append("  ").append(k).append(": ").append(v).append('\n'));
            }
            yaml.append("models:\n");
            for (int m = 0; m < models.size(); m++) {
                yaml.append("  - model: ").append(StagedCandidates.quoted(models.get(m))).append('\n');
                StringBuilder parameters = new StringBuilder();
                for (int i = 0; i < dimensions.size(); i++) {
                    if (dimensions.get(i).model() == m) {
                        parameters.append("      ").append(dimensions.get(i).parameter()).append(": ")
                                .append(StagedCandidates.number(x[i])).append('\n');
                    }
                }
                if (!parameters.isEmpty()) {
                    yaml.append("    parameters:\n").append(parameters);
                }
            }
            return yaml.toString();
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
    private final Evaluator evaluator;
    private final ScoreCache cache;
    private final Duration timeout;
    private final Clock clock;

    public RecipeSearch(MergeExecutor executor, Evaluator evaluator, ScoreCache cache, Duration timeout, Clock clock) {
        this.executor = executor;
        this.evaluator = evaluator;
        this.cache = cache;
        this.timeout = timeout;
        this.clock = clock;
    }

    /**
     * Searches {@code space} with at most {@code budget} evaluations from the middle of the bounds (step a third
     * of each range), CMA-ES seeded with {@code seed}, and writes the best candidate to {@code out}.
     */
    public Result run(Space space, int budget, long seed, Path out) throws IOException, RecipeException {
        if (space.dimensions().isEmpty()) {
            throw new RecipeException("evolve: nothing to search (no dimensions)");
        }
        if (budget < 2) {
            throw new RecipeException("evolve: a budget of " + budget + " evaluations is too small");
        }
        if (Files.exists(out)) {
            throw new RecipeException("output '" + out + "' already exists");
        }
        RecipeParser.parse(space.recipe(middle(space))); // a bad method or parameter fails before any merge
        Path staging = StagedCandidates.create(out, "evolve");
        try {
            return search(space, budget, seed, out, staging);
        } finally {
            StagedCandidates.deleteTree(staging);
        }
    }

    private Result search(Space space, int budget, long seed, Path out, Path staging)
            throws IOException, RecipeException {
        int n = space.dimensions().size();
        double[] lower = new double[n];
        double[] upper = new double[n];
        double[] sigma = new double[n];
        for (int i = 0; i < n; i++) {
            lower[i] = space.dimensions().get(i).min();
            upper[i] = space.dimensions().get(i).max();
            sigma[i] = (upper[i] - lower[i]) / 3;
        }
        List<Trial> trials = new ArrayList<>();
        CandidateScorer scorer = new CandidateScorer(executor, evaluator, cache, timeout, clock);
        Path[] bestDir = {null};
        double[] bestScore = {Double.NEGATIVE_INFINITY};
        double[][] best = {null};
        ObjectiveFunction objective = new ObjectiveFunction(x -> {
            try {
                Path dir = staging.resolve("candidate-" + trials.size());
                executor.run(RecipeParser.parse(space.recipe(x)), dir);
                CandidateScorer.Scored scored = scorer.score(dir.getFileName().toString(), dir.toString());
                Optional<Score> score = scored.score();
                String error = scored.error();
                trials.add(new Trial(x.clone(), score.map(Score::value).orElse(null), error));
                if (score.isPresent() && score.get().value() > bestScore[0]) {
                    if (bestDir[0] != null) {
                        StagedCandidates.deleteTree(bestDir[0]);
                    }
                    bestDir[0] = dir;
                    bestScore[0] = score.get().value();
                    best[0] = x.clone();
                } else {
                    StagedCandidates.deleteTree(dir);
                }
                return score.map(Score::value).orElse(-Double.MAX_VALUE);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } catch (RecipeException e) {
                throw new IllegalStateException(e);
            }
        });
        CMAESOptimizer optimizer = new CMAESOptimizer(budget, Double.POSITIVE_INFINITY, true, 0, 0,
                new MersenneTwister(seed), false, null);
        try {
            optimizer.optimize(new MaxEval(budget), objective, GoalType.MAXIMIZE, new InitialGuess(middle(space)),
                    new SimpleBounds(lower, upper), new CMAESOptimizer.Sigma(sigma),
                    new CMAESOptimizer.PopulationSize(4 + (int) (3 * Math.log(n))));
        } catch (TooManyEvaluationsException e) {
            // the budget is spent: the best so far stands
        } catch (UncheckedIOException e) {
            throw e.getCause();
        } catch (IllegalStateException e) {
            if (e.getCause() instanceof RecipeException r) {
                throw r;
            }
            throw e;
        }
        if (bestDir[0] == null) {
            throw new RecipeException("evolve: none of " + trials.size() + " candidates could be scored by "
                    + evaluator.id() + " (" + trials.getFirst().error() + ")");
        }
        Files.move(bestDir[0], out);
        String recipe = space.recipe(best[0]);
        Files.writeString(out.resolve(BEST_RECIPE), recipe, StandardCharsets.UTF_8);
        Result result = new Result(best[0], bestScore[0], recipe, trials, scorer.evaluations(), evaluator.id(), seed);
        Files.write(out.resolve(REPORT), result.toJson());
        return result;
    }

    private static double[] middle(Space space) {
        return space.dimensions().stream().mapToDouble(d -> (d.min() + d.max()) / 2).toArray();
    }
}
