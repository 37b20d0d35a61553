package io.modelmerge.engine.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.method.MergeMethods;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.storage.safetensors.DType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every method's output, and its variants', pinned by sha256 on fixed inputs and seeds: BF16 and F32 inputs,
 * F32 and BF16 outputs, several thread counts and memory budgets. The table was recorded before the engine's
 * seams were reshaped, so a refactoring that changes one output bit fails here.
 *
 * <p>The table holds the bytes this machine's Vector API writes ({@value #TABLE_PREFIX} plus the vector width):
 * reductions add lanes in lane order, so another vector width may round sums differently. To record a table
 * (only when an output is meant to change, and saying why in the commit), run with
 * {@code -Dgolden.record=true}.
 */
class GoldenOutputsTest {
    private static final String TABLE_PREFIX = "golden-outputs-";
    private static final Path TABLES = Path.of("src/test/resources/golden");

    /**
     * How each recipe is run: inputs' dtype and shape (hidden size, vocabulary), output dtype, threads, budget.
     * The odd shape puts rows and tensors at lengths no vector width divides, so the kernels' tails are pinned too.
     */
    private record Run(DType inputs, int hidden, int vocab, String outDtype, int threads, long memory) {
        Run(DType inputs, String outDtype, int threads, long memory) {
            this(inputs, 256, 600, outDtype, threads, memory);
        }

        String key() {
            String shape = hidden == 256 && vocab == 600 ? "" : " " + hidden + "x" + vocab;
            return inputs.name() + "->" + outDtype + " " + threads + "t " + (memory >> 20) + "MiB" + shape;
        }

        String inputKey() {
            return inputs.name() + " " + hidden + "x" + vocab;
        }
    }

    private static final List<Run> RUNS = List.of(
            new Run(DType.BF16, "float32", 1, 2L << 30),
            new Run(DType.BF16, "float32", 3, 16L << 20),
            new Run(DType.BF16, "bfloat16", 2, 24L << 20),
            new Run(DType.F32, "float32", 7, 16L << 20),
            new Run(DType.F32, "bfloat16", 1, 2L << 30),
            new Run(DType.F32, 100, 301, "float32", 2, 2L << 30),
            new Run(DType.BF16, 100, 301, "bfloat16", 3, 16L << 20));

    @TempDir
    Path dir;

    @Test
    void everyMethodWritesTheBytesItWroteBeforeTheRefactoring() throws Exception {
        Map<String, String> hashes = new TreeMap<>();
        for (String inputs : RUNS.stream().map(Run::inputKey).distinct().toList()) {
            Run first = RUNS.stream().filter(r -> r.inputKey().equals(inputs)).findFirst().orElseThrow();
            Path in = ReproducibleMergeTest.Inputs.write(dir.resolve("in-" + inputs.replace(' ', '-')), first.hidden(),
                    first.vocab(), first.inputs());
            Map<String, String> recipes = ReproducibleMergeTest.recipes(in);
            for (Run run : RUNS) {
                if (!run.inputKey().equals(inputs)) {
                    continue;
                }
                for (var recipe : recipes.entrySet()) {
                    String yaml = recipe.getValue().replace("dtype: float32\n", "dtype: " + run.outDtype() + "\n");
                    hashes.put(recipe.getKey() + " | " + run.key(), merge(yaml, run, dir.resolve("out")));
                }
            }
        }
        Path table = TABLES.resolve(TABLE_PREFIX + FloatVector.SPECIES_PREFERRED.vectorBitSize() + "bit.tsv");
        if (Boolean.getBoolean("golden.record")) {
            Files.createDirectories(TABLES);
            StringBuilder text = new StringBuilder();
            hashes.forEach((k, v) -> text.append(k).append('\t').append(v).append('\n'));
            Files.writeString(table, text);
        }
        assertTrue(Files.exists(table), "no golden table for this vector width: " + table.toAbsolutePath()
                + " (record one with -Dgolden.record=true on code whose outputs are trusted)");
        Map<String, String> golden = new LinkedHashMap<>();
        for (String line : Files.readAllLines(table)) {
            int tab = line.indexOf('\t');
            golden.put(line.substring(0, tab), line.substring(tab + 1));
        }
        assertEquals(golden.keySet(), hashes.keySet(), "the runs the table holds");
        List<String> changed = new ArrayList<>();
        golden.forEach((k, v) -> {
            if (!v.equals(hashes.get(k))) {
                changed.add(k);
            }
        });
        assertEquals(List.of(), changed, "outputs that changed");
        assertEquals(MergeMethods.all().stream().filter(m -> !(m instanceof io.modelmerge.engine.method.DeltaMethod || m instanceof io.modelmerge.engine.method.SearchMethod))
                .map(io.modelmerge.engine.method.RecipeMethod::name).toList(), hashes.keySet().stream().map(k -> k.split("[ |]")[0]).distinct().sorted()
                .toList(), "every method is in the table");
    }

    /** The sha256 of the tensors and configs written (not the card or recipe, which name the temporary paths). */
    private static String merge(String yaml, Run run, Path out) throws Exception {
        ReproducibleMergeTest.delete(out);
        MergeOptions options = MergeOptions.defaults().withThreads(run.threads()).withMemory(run.memory()).withSeed(11);
        new MergeExecutor(options, p -> { }, new AtomicBoolean()).run(RecipeParser.parse(yaml), out);
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        try (Stream<Path> files = Files.list(out)) {
            for (Path f : files.sorted().toList()) {
                String name = f.getFileName().toString();
                if (name.endsWith(".safetensors") || name.endsWith(".json")) {
                    sha.update(name.getBytes());
                    sha.update(Files.readAllBytes(f));
                }
            }
        }
        return HexFormat.of().formatHex(sha.digest());
    }
}
