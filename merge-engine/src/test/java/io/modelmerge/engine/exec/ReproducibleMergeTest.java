package io.modelmerge.engine.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.method.MergeMethods;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The same recipe and seed write the same bytes whatever the thread count and the memory budget (so the block
 * size), and whether the JIT has compiled the Vector API loops or not: every method and its variants, their
 * outputs compared by sha256.
 */
class ReproducibleMergeTest {
    /** Thread counts, and budgets that cut the tensors into blocks of different sizes (131072 elements down to under 50000). */
    private static final List<MergeOptions> RUNS = List.of(
            options(1, 2L << 30), options(2, 2L << 30), options(3, 16L << 20), options(7, 16L << 20),
            options(2, 24L << 20));

    @TempDir
    Path dir;

    private static MergeOptions options(int threads, long memory) {
        return MergeOptions.defaults().withThreads(threads).withMemory(memory).withSeed(11);
    }

    @Test
    void everyMethodWritesTheSameBytesAtAnyThreadCountAndBudget() throws Exception {
        Map<String, String> recipes = recipes(Inputs.write(dir.resolve("in"), 256, 600));
        Set<String> covered = new LinkedHashSet<>();
        List<String> differing = new ArrayList<>();
        for (var recipe : recipes.entrySet()) {
            covered.add(recipe.getKey().split(" ")[0]);
            List<String> hashes = new ArrayList<>();
            for (MergeOptions run : RUNS) {
                hashes.add(merge(recipe.getValue(), run, dir.resolve("out-" + hashes.size())));
            }
            for (int r = 1; r < RUNS.size(); r++) {
                if (!hashes.getFirst().equals(hashes.get(r))) {
                    differing.add(recipe.getKey() + " (" + RUNS.get(r).threads() + " threads, "
                            + RUNS.get(r).memoryBytes() + " bytes)");
                }
            }
        }
        assertEquals(List.of(), differing, "outputs that differ from 1 thread with 2 GiB");
        assertEquals(Set.copyOf(MergeMethods.all().stream().filter(m -> !(m instanceof io.modelmerge.engine.method.DeltaMethod || m instanceof io.modelmerge.engine.method.SearchMethod))
                .map(io.modelmerge.engine.method.RecipeMethod::name).toList()), covered,
                "every merge method is covered (delta methods: DeltaEditingTest)");
    }

    /**
     * Without C2 the Vector API runs its Java fallback, which rounds reductions and transcendental functions
     * differently from the compiled intrinsics: a JVM limited to C1 must still write the same bytes.
     */
    @Test
    void theInterpretedVectorApiWritesWhatTheCompiledOneWrites() throws Exception {
        Path inputs = Inputs.write(dir.resolve("in"), 64, 300);
        Map<String, String> recipes = recipes(inputs);
        Map<String, String> here = new LinkedHashMap<>();
        // Warm the JIT up first, then hash what the compiled code writes.
        for (int round = 0; round < 2; round++) {
            for (var recipe : recipes.entrySet()) {
                here.put(recipe.getKey(), merge(recipe.getValue(), RUNS.get(1), dir.resolve("warm")));
            }
        }
        Path javaBin = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> command = new ArrayList<>(List.of(javaBin.toString(), "-XX:TieredStopAtLevel=1",
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-Dmodelmerge.fixtures=" + Fixtures.real(),
                "-cp", System.getProperty("java.class.path"), Child.class.getName(), inputs.toString(),
                dir.resolve("child").toString()));
        Process child = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(child.getInputStream().readAllBytes());
        assertTrue(child.waitFor(5, TimeUnit.MINUTES));
        assertEquals(0, child.exitValue(), output);
        Map<String, String> there = new LinkedHashMap<>();
        output.lines().filter(l -> l.startsWith("sha ")).forEach(l -> {
            int tab = l.indexOf('\t');
            there.put(l.substring(4, tab), l.substring(tab + 1));
        });
        assertEquals(here.keySet(), there.keySet(), output);
        List<String> differing = here.keySet().stream().filter(k -> !here.get(k).equals(there.get(k))).toList();
        assertEquals(List.of(), differing, "outputs that differ between C1 (Vector API interpreted) and C2 (compiled)");
    }

    /** Runs every recipe once in this JVM and prints {@code sha <name>\t<sha256>}; the other test starts it. */
    public static final class Child {
        public static void main(String[] args) throws Exception {
            Map<String, String> recipes = recipes(Path.of(args[0]));
            for (var recipe : recipes.entrySet()) {
                System.out.println("sha " + recipe.getKey() + "\t" + merge(recipe.getValue(), RUNS.get(1),
                        Path.of(args[1])));
            }
        }
    }

    /** Merges into {@code out} (replacing it), and the sha256 of every file written but the model card. */
    static String merge(String yaml, MergeOptions options, Path out) throws Exception {
        delete(out);
        new MergeExecutor(options, p -> { }, new AtomicBoolean()).run(RecipeParser.parse(yaml), out);
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        try (Stream<Path> files = Files.list(out)) {
            for (Path f : files.sorted().toList()) {
                if (!f.getFileName().toString().equals("README.md")) {
                    sha.update(f.getFileName().toString().getBytes());
                    sha.update(Files.readAllBytes(f));
                }
            }
        }
        return HexFormat.of().formatHex(sha.digest());
    }

    static void delete(Path dir) throws IOException {
        if (Files.exists(dir)) {
            try (Stream<Path> walk = Files.walk(dir)) {
                for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                    Files.delete(p);
                }
            }
        }
    }

    /** Every method, and the variants that take another code path, over the base, three fine-tunes and Fishers. */
    static Map<String, String> recipes(Path in) {
        String base = in.resolve("base").toString();
        List<String> fts = List.of(in.resolve("ft-0").toString(), in.resolve("ft-1").toString(),
                in.resolve("ft-2").toString());
        Map<String, String> recipes = new LinkedHashMap<>();
        String sparse = "weight: 0.5, density: 0.4";
        recipes.put("linear", models("linear", null, fts, "weight: 1.0", ""));
        recipes.put("task_arithmetic", models("task_arithmetic", base, fts, "weight: 0.4", ""));
        recipes.put("ties", models("ties", base, fts, sparse, ""));
        recipes.put("ties paper", models("ties", base, fts, sparse, "election: paper"));
        recipes.put("ties model-wide", models("ties", base, fts, sparse, "topk_scope: model"));
        recipes.put("magnitude_prune", models("magnitude_prune", base, fts, sparse, ""));
        recipes.put("dare_linear", models("dare_linear", base, fts, sparse, ""));
        recipes.put("dare_ties", models("dare_ties", base, fts, sparse, ""));
        recipes.put("dare_ties inverse_density", models("dare_ties", base, fts, sparse, "rescale: inverse_density"));
        recipes.put("breadcrumbs", models("breadcrumbs", base, fts, "weight: 0.5, density: 0.8, gamma: 0.05", ""));
        recipes.put("breadcrumbs row", models("breadcrumbs", base, fts, "weight: 0.5, density: 0.8, gamma: 0.05",
                "breadcrumbs_scope: row"));
        recipes.put("breadcrumbs_ties", models("breadcrumbs_ties", base, fts, "weight: 0.5, density: 0.8, gamma: 0.05", ""));
        recipes.put("della", models("della", base, fts, "weight: 0.5, density: 0.5, epsilon: 0.1", ""));
        recipes.put("della inverse_probability", models("della", base, fts, "weight: 0.5, density: 0.5, epsilon: 0.1",
                "rescale: inverse_probability"));
        recipes.put("della_linear", models("della_linear", base, fts, "weight: 0.5, density: 0.5, epsilon: 0.1", ""));
        recipes.put("pcb", models("pcb", base, fts, null, "pcb_ratio: 0.2"));
        recipes.put("sce", models("sce", base, fts, null, "select_topk: 0.5"));
        recipes.put("model_stock", models("model_stock", base, fts, null, ""));
        recipes.put("model_stock filter_wise", models("model_stock", base, fts, null, "filter_wise: true"));
        recipes.put("slerp", models("slerp", base, fts.subList(0, 1), null, "t: 0.3"));
        recipes.put("nuslerp", models("nuslerp", base, fts.subList(0, 2), "weight: 0.6", ""));
        recipes.put("nuslerp rows", models("nuslerp", base, fts.subList(0, 2), "weight: 0.6", "nuslerp_flatten: false"));
        recipes.put("nuslerp row_wise", models("nuslerp", base, fts.subList(0, 2), "weight: 0.6",
                "nuslerp_flatten: false, nuslerp_row_wise: true"));
        recipes.put("multislerp", models("multislerp", base, fts, "weight: 1.0", ""));
        recipes.put("karcher", models("karcher", null, fts, "weight: 1.0", ""));
        recipes.put("passthrough", models("passthrough", null, fts.subList(0, 1), "scale: 0.5", ""));
        recipes.put("nearswap", models("nearswap", base, fts.subList(0, 1), null, "t: 0.005"));
        recipes.put("extrapolate", models("extrapolate", base, fts.subList(0, 1), null, "alpha: 0.3"));
        // deltas are about 0.01: an epsilon there leaves entries changed by one, several or no model
        recipes.put("ram", models("ram", base, fts, null, "epsilon: 0.01"));
        recipes.put("ramplus_tl", models("ramplus_tl", base, fts, null, "epsilon: 0.01, r: 0.5, alpha: 0.5"));
        recipes.put("arcee_fusion", models("arcee_fusion", base, fts.subList(0, 1), null, ""));
        StringBuilder fisher = new StringBuilder("merge_method: fisher\nmodels:\n");
        for (int m = 0; m < fts.size(); m++) {
            fisher.append("  - model: ").append(fts.get(m)).append("\n    parameters: {weight: 1.0, fisher: ")
                    .append(in.resolve("fisher-" + m)).append("}\n");
        }
        recipes.put("fisher", fisher + "dtype: float32\n");
        recipes.put("fisher mergelm", fisher + "parameters: {variant: mergelm}\ndtype: float32\n");
        StringBuilder regmean = new StringBuilder("merge_method: regmean\nmodels:\n");
        for (int m = 0; m < fts.size(); m++) {
            regmean.append("  - model: ").append(fts.get(m)).append("\n    parameters: {gram: ")
                    .append(in.resolve("gram-" + m)).append("}\n");
        }
        recipes.put("regmean", regmean + "dtype: float32\n");
        for (String method : List.of("cat", "svd", "robustmerge")) {
            recipes.put(method, "merge_method: " + method + "\nmodels:\n  - model: "
                    + Fixtures.real("gpt2-lora-c_attn-r8-a") + "\n    parameters: {weight: 1.0}\n  - model: "
                    + Fixtures.real("gpt2-lora-b") + "\n    parameters: {weight: 0.5}\nparameters:\n"
                    + "  target_overlap: intersect\n" + (method.equals("svd") ? "  rank: 6\n" : ""));
        }
        return recipes;
    }

    /** A recipe over {@code models} (each with {@code perModel} parameters, if any), output in F32 to show every bit. */
    private static String models(String method, String base, List<String> models, String perModel, String global) {
        StringBuilder yaml = new StringBuilder("merge_method: " + method + "\n");
        if (base != null) {
            yaml.append("base_model: ").append(base).append('\n');
        }
        yaml.append("models:\n");
        for (String model : models) {
            yaml.append("  - model: ").append(model).append('\n');
            if (perModel != null) {
                yaml.append("    parameters: {").append(perModel).append("}\n");
            }
        }
        if (!global.isEmpty()) {
            yaml.append("parameters: {").append(global).append("}\n");
        }
        return yaml.append("dtype: float32\n").toString();
    }

    /** Llama-shaped inputs (BF16 unless asked): a base, three fine-tunes of it, and a positive F32 Fisher for each fine-tune. */
    static final class Inputs {
        static Path write(Path dir, int hidden, int vocab) throws IOException {
            return write(dir, hidden, vocab, DType.BF16);
        }

        /** The same inputs with the models stored as {@code dtype}. */
        static Path write(Path dir, int hidden, int vocab, DType dtype) throws IOException {
            var specs = SyntheticCheckpoints.llama(1, hidden, 2 * hidden, vocab, dtype);
            SyntheticCheckpoints.write(dir.resolve("base"), specs, (t, i) -> 0.05 * TestNoise.of(0, t, i));
            for (int m = 0; m < 3; m++) {
                long seed = m + 1;
                SyntheticCheckpoints.write(dir.resolve("ft-" + m), specs, (t, i) -> 0.05 * TestNoise.of(0, t, i)
                        + 0.01 * TestNoise.of(seed, t, i));
                SyntheticCheckpoints.write(dir.resolve("fisher-" + m),
                        SyntheticCheckpoints.llama(1, hidden, 2 * hidden, vocab, DType.F32),
                        (t, i) -> 1e-4 + Math.abs(TestNoise.of(100 + seed, t, i)));
                // the projections' input Grams, a positive diagonal and small symmetric off-diagonal noise; not
                // down_proj's, whose wider input would not fit the smallest budgets here (it is averaged)
                List<io.modelmerge.storage.safetensors.TensorSpec> grams = new java.util.ArrayList<>();
                for (var spec : specs) {
                    if (spec.name().contains("proj") && !spec.name().contains("down_proj")) {
                        long in = spec.shape()[1];
                        grams.add(new io.modelmerge.storage.safetensors.TensorSpec(spec.name(), DType.F32,
                                new long[] {in, in}));
                    }
                }
                Map<String, Long> width = new java.util.HashMap<>();
                grams.forEach(g -> width.put(g.name(), g.shape()[0]));
                SyntheticCheckpoints.write(dir.resolve("gram-" + m), grams, (t, i) -> {
                    long d = width.get(t);
                    long r = i / d;
                    long c = i % d;
                    return r == c ? 1 + Math.abs(TestNoise.of(200 + seed, t, r))
                            : 0.005 * TestNoise.of(300 + seed, t, Math.min(r, c) * d + Math.max(r, c));
                });
            }
            return dir;
        }
    }
}
