package io.modelmerge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.method.MergeMethods;
import io.modelmerge.engine.method.RecipeMethod;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.TensorSpec;
import io.modelmerge.storage.testing.Fixtures;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MergeCommandTest {
    /** Runs mergectl here: its exit code, standard output and standard error. */
    static String[] run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Mergectl.run(Map.of(), new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new String[] {String.valueOf(code), out.toString(), err.toString()};
    }

    @Test
    void mergesARecipeAndTheOutputInspects(@TempDir Path dir) throws Exception {
        Path mnist = Fixtures.real("mnist-tinygrad-full").resolve("model.safetensors");
        Path recipe = dir.resolve("recipe.yml");
        Files.writeString(recipe, "merge_method: linear\nmodels:\n  - model: " + mnist + "\n    parameters: {weight: 1}\n"
                + "  - model: " + mnist + "\n    parameters: {weight: 3}\n");
        Path out = dir.resolve("out");
        String[] result = run("merge", recipe.toString(), out.toString(), "--memory", "64m", "--threads", "2");
        assertEquals("0", result[0], result[2]);
        assertTrue(result[1].contains("merged 2 tensors (406,528 bytes) into " + out), result[1]);
        assertTrue(result[1].contains("100.0% tensors 2/2"), result[1]);
        String[] inspected = run("inspect", "--json", out.toString());
        JsonNode json = new ObjectMapper().readTree(inspected[1]);
        assertEquals(2, json.get("tensor_count").asInt());
        assertEquals(List.of("merge_recipe.yml", "README.md").stream().sorted().toList(),
                java.util.stream.StreamSupport.stream(json.get("tag_along_files").spliterator(), false)
                        .map(JsonNode::asText).sorted().toList());
    }

    /** A parameter linear does not take: a note by default (as mergekit ignores it), refused with --strict. */
    @Test
    void anIgnoredParameterIsANoteAndStrictRefusesIt(@TempDir Path dir) throws Exception {
        Path mnist = Fixtures.real("mnist-tinygrad-full").resolve("model.safetensors");
        Path recipe = dir.resolve("recipe.yml");
        Files.writeString(recipe, "merge_method: linear\nmodels:\n  - model: " + mnist + "\n    parameters: {weight: 1}\n"
                + "  - model: " + mnist + "\n    parameters: {weight: 3, density: 0.5}\n");
        String[] lenient = run("merge", recipe.toString(), dir.resolve("out").toString(), "--memory", "64m");
        assertEquals("0", lenient[0], lenient[2]);
        assertTrue(lenient[1].contains("note: parameter 'density' in parameters of model " + mnist
                + " is not one merge_method linear takes"), lenient[1]);
        String[] strict = run("merge", recipe.toString(), dir.resolve("strict").toString(), "--strict");
        assertEquals(String.valueOf(Mergectl.BAD_INPUT), strict[0]);
        assertTrue(strict[2].contains("unknown parameter 'density'"), strict[2]);
        assertFalse(Files.exists(dir.resolve("strict")));
    }

    @Test
    void aBadRecipeIsOneLineAndLeavesNoOutput(@TempDir Path dir) throws Exception {
        Path recipe = dir.resolve("recipe.yml");
        Files.writeString(recipe, "merge_method: soup\nmodels:\n  - model: x\n");
        Path out = dir.resolve("out");
        String[] result = run("merge", recipe.toString(), out.toString());
        assertEquals(String.valueOf(Mergectl.BAD_INPUT), result[0]);
        assertEquals(1, result[2].lines().count(), result[2]);
        assertEquals("mergectl: unknown merge_method 'soup' (known: " + String.join(", ", MergeMethods.names()) + ")",
                result[2].strip());
        assertFalse(Files.exists(out));
    }

    /** bench builds every checkpoint method's recipe from its declarations alone, and each passes every check. */
    @Test
    void everyMethodGetsABenchRecipeThatPassesEveryCheck(@TempDir Path dir) throws Exception {
        List<TensorSpec> specs = SyntheticCheckpoints.llamaOfSize(1 << 20, DType.BF16);
        List<Path> inputs = new ArrayList<>();
        for (int m = 0; m < 3; m++) {
            SyntheticCheckpoints.write(dir.resolve("model-" + m), specs, SyntheticCheckpoints.fineTune(m));
            inputs.add(dir.resolve("model-" + m));
        }
        MergeExecutor executor = new MergeExecutor(MergeOptions.defaults(), p -> { }, new AtomicBoolean());
        for (RecipeMethod method : MergeMethods.all()) {
            if (method.needsMoreThanCheckpoints().isPresent()) {
                continue;
            }
            BenchRecipe recipe = BenchRecipe.of(method, inputs);
            assertEquals(specs.size(), executor.validate(RecipeParser.parse(recipe.yaml())), recipe.yaml());
            int base = method.usesBase() ? 1 : 0;
            assertEquals(base + Math.min(method.maxModels(), 3 - base), recipe.inputs().size(), recipe.yaml());
        }
    }

    /** The two real gpt2 adapters combined on their shared c_attn modules: inspect reads both results as adapters. */
    @Test
    void catAndSvdOfTwoRealAdaptersInspectAsPeftAdapters(@TempDir Path dir) throws Exception {
        for (String method : List.of("cat", "svd")) {
            Path recipe = dir.resolve(method + ".yml");
            Files.writeString(recipe, "merge_method: " + method + "\nmodels:\n  - model: " + Fixtures.real("gpt2-lora-c_attn-r8-a")
                    + "\n  - model: " + Fixtures.real("gpt2-lora-b") + "\n    parameters: {weight: 0.5}\n"
                    + "parameters: {target_overlap: intersect}\n");
            Path out = dir.resolve(method);
            String[] merged = run("merge", recipe.toString(), out.toString());
            assertEquals("0", merged[0], merged[2]);
            String[] inspected = run("inspect", out.toString());
            assertEquals("0", inspected[0], inspected[2]);
            assertTrue(inspected[1].contains("format:      peft_adapter"), inspected[1]);
            String rank = method.equals("cat") ? "r=16 alpha=16.0" : "r=8 alpha=8.0";
            assertTrue(inspected[1].contains("LoRA " + rank + " targets=[c_attn]") && inspected[1].contains("12 modules, base gpt2"),
                    inspected[1]);
        }
    }

    @Test
    void benchPrintsOneJsonLinePerMethodWithRatioAndPeakMemory(@TempDir Path dir) throws Exception {
        List<String> methods = List.of("linear", "ties", "della", "pcb", "fisher", "nuslerp", "passthrough");
        String[] result = run("bench", "--size", "4m", "--models", "3", "--method", String.join(",", methods), "--repeat", "1",
                "--dir", dir.toString());
        assertEquals("0", result[0], result[2]);
        List<String> lines = result[1].lines().toList();
        assertEquals(methods.size(), lines.size(), result[1]);
        for (String line : lines) {
            JsonNode json = new ObjectMapper().readTree(line);
            assertTrue(json.get("merge_s").asDouble() > 0 && json.get("floor_s").asDouble() > 0, line);
            // exact: the ratio printed is the one of the times printed, whatever the timing noise
            assertEquals(BenchCommand.ratio(json.get("floor_s").asDouble(), json.get("merge_s").asDouble()),
                    json.get("ratio").asDouble(), line);
            assertTrue(json.get("peak_anon_MB").asDouble() > 0, line);
            int read = json.get("method").asText().equals("passthrough") ? 1 : 3; // passthrough reads one model
            assertEquals(read * 4.19e-3, json.get("input_GB").asDouble(), 0.3 * read * 4.19e-3, line);
        }
    }
}
