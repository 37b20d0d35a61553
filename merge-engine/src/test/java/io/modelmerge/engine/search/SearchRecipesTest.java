package io.modelmerge.engine.search;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Search recipes: the space an evolve recipe describes, their refusals, and a greedy soup run from its recipe. */
class SearchRecipesTest {
    @TempDir
    Path dir;

    private MergeExecutor executor() {
        return new MergeExecutor(MergeOptions.defaults().withThreads(1).withCache(dir.resolve("cache"), 1L << 30),
                p -> { }, new AtomicBoolean());
    }

    private String model(String name, double value) throws Exception {
        List<TensorSpec> specs = List.of(new TensorSpec("w", DType.F32, new long[] {4, 4}));
        return SyntheticCheckpoints.write(dir.resolve(name), specs, (tensor, i) -> value).toString();
    }

    @Test
    void evolveSearchesTheBoundedParametersAndFixesTheRest() throws Exception {
        Recipe recipe = RecipeParser.parse("""
                merge_method: evolve
                base_model: ns/base@1
                parameters: {evaluator: digits@1, method: ties, budget: 12, normalize: false, lambda: [0.5, 1.5],
                             layer_groups: 2}
                models:
                  - model: ns/a@1
                    parameters: {weight: [0, 1], density: 0.5}
                  - model: ns/b@1
                    parameters: {weight: [-1, 1], density: [0.2, 1]}
                """);
        RecipeSearch.Space space = SearchRecipes.space(recipe);
        assertEquals("ties", space.mergeMethod());
        assertEquals(List.of("ns/a@1", "ns/b@1"), space.models());
        assertEquals(Map.of("normalize", "false"), space.fixed());
        assertEquals(List.of(Map.of("density", "0.5"), Map.of()), space.modelFixed());
        // two layer groups: every searched parameter is a gradient of two points
        assertEquals(List.of(new RecipeSearch.Dimension("lambda", -1, 0, 0.5, 1.5),
                new RecipeSearch.Dimension("lambda", -1, 1, 0.5, 1.5),
                new RecipeSearch.Dimension("weight", 0, 0, 0, 1), new RecipeSearch.Dimension("weight", 0, 1, 0, 1),
                new RecipeSearch.Dimension("density", 1, 0, 0.2, 1), new RecipeSearch.Dimension("density", 1, 1, 0.2, 1),
                new RecipeSearch.Dimension("weight", 1, 0, -1, 1), new RecipeSearch.Dimension("weight", 1, 1, -1, 1)),
                space.dimensions());
        Recipe candidate = RecipeParser.parse(space.recipe(new double[] {0.6, 0.7, 0.1, 0.2, 0.3, 0.4, 0.5, -0.5}));
        assertEquals("ties", candidate.mergeMethod());
        assertEquals("ns/base@1", candidate.baseModel().orElseThrow());
        assertEquals(new io.modelmerge.engine.recipe.ParamValue.Gradient(List.of(0.6, 0.7)),
                candidate.parameters().get("lambda"));
        assertEquals(new io.modelmerge.engine.recipe.ParamValue.Scalar(0.5),
                candidate.models().get(0).parameters().get("density"));
        assertEquals(new io.modelmerge.engine.recipe.ParamValue.Gradient(List.of(0.5, -0.5)),
                candidate.models().get(1).parameters().get("weight"));
        assertEquals("digits@1", SearchRecipes.evaluator(recipe));
    }

    /** Candidates merged at once share the search's memory budget: it holds no more than one merge would. */
    @Test
    void parallelCandidatesShareTheMemoryBudget() throws Exception {
        MergeOptions search = MergeOptions.defaults().withMemory(1L << 30);
        Recipe evolve = RecipeParser.parse("merge_method: evolve\nparameters: {evaluator: e@1, method: linear,"
                + " parallel: 4}\nmodels: [{model: a, parameters: {weight: [0, 1]}}]");
        assertEquals(1L << 28, SearchRecipes.candidateOptions(evolve, search).memoryBytes());
        Recipe soup = RecipeParser.parse("merge_method: greedy_soup\nparameters: {evaluator: e@1}\nmodels: [{model: a}]");
        assertEquals(1L << 30, SearchRecipes.candidateOptions(soup, search).memoryBytes());
    }

    @Test
    void badSearchRecipesAreRefusedNamingTheParameter() throws Exception {
        String a = model("a", 1);
        String b = model("b", 2);
        Map<String, String> none = Map.of();
        RecipeException noEvaluator = assertThrows(RecipeException.class, () -> SearchRecipes.validate(
                RecipeParser.parse("merge_method: greedy_soup\nmodels: [{model: " + a + "}]"), none, executor()));
        assertTrue(noEvaluator.getMessage().contains("parameters.evaluator"), noEvaluator.getMessage());
        RecipeException empty = assertThrows(RecipeException.class, () -> SearchRecipes.validate(RecipeParser.parse("""
                merge_method: evolve
                parameters: {evaluator: e@1, method: linear}
                models: [{model: %s, parameters: {weight: [1, 0]}}, {model: %s}]
                """.formatted(a, b)), none, executor()));
        assertTrue(empty.getMessage().contains("models[0].parameters.weight: bounds [1.0, 0.0] are empty"),
                empty.getMessage());
        RecipeException nothing = assertThrows(RecipeException.class, () -> SearchRecipes.validate(RecipeParser.parse(
                "merge_method: evolve\nparameters: {evaluator: e@1, method: linear}\nmodels: [{model: " + a + "}]"),
                none, executor()));
        assertTrue(nothing.getMessage().contains("nothing to search"), nothing.getMessage());
        RecipeException budget = assertThrows(RecipeException.class, () -> SearchRecipes.validate(RecipeParser.parse(
                "merge_method: evolve\nparameters: {evaluator: e@1, method: linear, budget: 1.5}\nmodels: [{model: " + a
                        + ", parameters: {weight: [0, 1]}}]"), none, executor()));
        assertTrue(budget.getMessage().contains("parameters.budget = 1.5 is outside [2, 10000]"), budget.getMessage());
        RecipeException nested = assertThrows(RecipeException.class, () -> SearchRecipes.validate(RecipeParser.parse(
                "merge_method: evolve\nparameters: {evaluator: e@1, method: greedy_soup}\nmodels: [{model: " + a
                        + ", parameters: {weight: [0, 1]}}]"), none, executor()));
        assertTrue(nested.getMessage().contains("is a search itself"), nested.getMessage());
        RecipeException weighted = assertThrows(RecipeException.class, () -> SearchRecipes.validate(RecipeParser.parse(
                "merge_method: greedy_soup\nparameters: {evaluator: e@1}\nmodels: [{model: " + a
                        + ", parameters: {weight: 2}}]"), none, executor()));
        assertTrue(weighted.getMessage().contains("models[0].parameters"), weighted.getMessage());
        // the inner recipe is checked by the engine too: an unknown method
        RecipeException unknown = assertThrows(RecipeException.class, () -> SearchRecipes.validate(RecipeParser.parse(
                "merge_method: evolve\nparameters: {evaluator: e@1, method: no_such}\nmodels: [{model: " + a
                        + ", parameters: {weight: [0, 1]}}]"), none, executor()));
        assertTrue(unknown.getMessage().contains("unknown merge_method 'no_such'"), unknown.getMessage());
        // and a plain merge of a search recipe says where it runs
        RecipeException plain = assertThrows(RecipeException.class, () -> executor().run(RecipeParser.parse(
                "merge_method: greedy_soup\nparameters: {evaluator: e@1}\nmodels: [{model: " + a + "}]"),
                dir.resolve("out")));
        assertTrue(plain.getMessage().contains("submit it to the merge service"), plain.getMessage());
        assertFalse(Files.exists(dir.resolve("out")));
    }

    /**
     * A greedy soup recipe whose ingredients are names (as a registry ref would be) with their files elsewhere:
     * candidates are offered by name, merged from the locations, and progress counts up to 2N − 1.
     */
    @Test
    void aGreedySoupRecipeRunsOverLocatedIngredientsAndReportsProgress() throws Exception {
        Map<String, String> locations = Map.of("ns/a@1", model("a", 1.0), "ns/b@1", model("b", 3.0),
                "ns/c@1", model("c", 2.0));
        Recipe recipe = RecipeParser.parse("""
                merge_method: greedy_soup
                parameters: {evaluator: mean@1, evaluation_timeout: 30}
                models: [{model: ns/a@1}, {model: ns/b@1}, {model: ns/c@1}]
                """);
        List<String> offered = new ArrayList<>();
        Evaluator evaluator = new Evaluator() {
            @Override
            public String id() {
                return "mean@1";
            }

            @Override
            public synchronized Score score(Candidate candidate) {
                offered.add(candidate.ref());
                double mean = GreedySoupTest.mean(Path.of(candidate.location()));
                return new Score(-(mean - 2.4) * (mean - 2.4), Map.of());
            }
        };
        List<SearchProgress> progress = new ArrayList<>();
        SearchRecipes.validate(recipe, locations, executor());
        SearchRecipes.Outcome outcome = SearchRecipes.run(recipe, locations, executor(), evaluator,
                ScoreCache.inMemory(), Clock.systemUTC(), 0, progress::add, dir.resolve("soup"));
        // alone: c (2.0) first, then b (3.0), a (1.0); {c, b} (2.5) is kept, {c, b, a} (2.0) is not
        assertEquals(List.of("ns/a@1", "ns/b@1", "ns/c@1", "candidate-1", "candidate-2"), offered);
        assertEquals(5, outcome.evaluations());
        assertEquals(-(2.5 - 2.4) * (2.5 - 2.4), outcome.score(), 1e-12);
        assertEquals(GreedySoup.REPORT, outcome.reportFile());
        assertEquals(2.5, GreedySoupTest.mean(dir.resolve("soup")), 1e-6);
        assertEquals(List.of(1, 2, 3, 4, 5), progress.stream().map(SearchProgress::candidatesDone).toList());
        assertTrue(progress.stream().allMatch(p -> p.candidatesTotal() == 5));
        assertEquals(outcome.score(), progress.getLast().bestScore().orElseThrow(), 1e-12);
        String report = Files.readString(dir.resolve("soup").resolve(GreedySoup.REPORT));
        assertTrue(report.contains("\"ns/b@1\"") && !report.contains(locations.get("ns/b@1")), report);
    }
}
