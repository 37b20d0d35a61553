package io.modelmerge.engine.exec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.method.AdapterMethod;
import io.modelmerge.engine.method.MergeMethods;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.storage.safetensors.DType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A merge split over workers (the statistic once, each shard on its own, in any order and at any thread count,
 * then the commit) writes the same files, byte for byte, as the merge run whole: every full-checkpoint method
 * of the golden table, model-wide TIES and normalized Fisher among them.
 */
class SplitMergeTest {
    /** Small enough that the test models' output takes several shards. */
    private static final long SHARD_SIZE = 200_000;

    @TempDir
    Path dir;

    private static MergeOptions options(int threads, Path cache) {
        return MergeOptions.defaults().withThreads(threads).withMemory(16L << 20).withSeed(11)
                .withOutShardSize(SHARD_SIZE).withCache(cache, 1L << 30);
    }

    @Test
    void everyMethodSplitByShardWritesTheBytesOfTheWholeMerge() throws Exception {
        Path in = ReproducibleMergeTest.Inputs.write(dir.resolve("in"), 256, 600, DType.BF16);
        Map<String, String> recipes = ReproducibleMergeTest.recipes(in);
        StringBuilder normalized = new StringBuilder(recipes.get("fisher").replace("dtype: float32\n", ""));
        recipes.put("fisher normalized", normalized + "parameters: {normalize_fishers: true}\ndtype: float32\n");
        List<String> modelWide = new ArrayList<>();
        int split = 0;
        for (var entry : recipes.entrySet()) {
            Recipe recipe = RecipeParser.parse(entry.getValue());
            Path cache = dir.resolve("cache");
            if (MergeMethods.named(recipe.mergeMethod()) instanceof AdapterMethod) {
                assertThrows(RecipeException.class, () -> executor(2, cache).planSplit(recipe), entry.getKey());
                continue;
            }
            Path whole = dir.resolve("whole-" + split).resolve("out"); // the model card names the directory
            executor(2, cache).run(recipe, whole);

            SplitPlan plan = executor(2, cache).planSplit(recipe);
            Optional<double[]> statistics = plan.modelWide() ? executor(1, cache).statistics(recipe) : Optional.empty();
            if (plan.modelWide()) {
                modelWide.add(entry.getKey());
            }
            Path shards = dir.resolve("shards-" + split);
            for (SplitPlan.Shard shard : plan.shards().reversed()) {
                String file = executor(1 + shard.index() % 3, cache).mergeShard(recipe, statistics, shard.index(), shards);
                assertEquals(shard.file(), file);
            }
            Path rest = dir.resolve("rest-" + split).resolve("out");
            MergeResult committed = executor(2, cache).commitSplit(recipe, rest);

            TreeSet<String> expected = names(whole);
            TreeSet<String> got = names(shards);
            got.addAll(names(rest));
            assertEquals(expected, got, entry.getKey());
            for (String name : expected) {
                Path part = Files.exists(shards.resolve(name)) ? shards.resolve(name) : rest.resolve(name);
                assertArrayEquals(Files.readAllBytes(whole.resolve(name)), Files.readAllBytes(part),
                        entry.getKey() + ": " + name);
            }
            assertTrue(plan.shards().size() >= 4, entry.getKey() + ": " + plan.shards().size() + " shards");
            assertEquals(plan.shards().stream().mapToLong(SplitPlan.Shard::bytes).sum(), plan.bytes());
            assertTrue(committed.files().containsAll(plan.shards().stream().map(SplitPlan.Shard::file).toList()));
            split++;
        }
        assertTrue(modelWide.containsAll(List.of("ties model-wide", "fisher normalized")), modelWide.toString());
        assertTrue(split > 20, split + " recipes split");
    }

    private static MergeExecutor executor(int threads, Path cache) {
        return new MergeExecutor(options(threads, cache), p -> { }, new AtomicBoolean());
    }

    private static TreeSet<String> names(Path dir) throws Exception {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString()).collect(java.util.stream.Collectors.toCollection(TreeSet::new));
        }
    }
}
