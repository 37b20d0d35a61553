package io.modelmerge.cli;

import io.modelmerge.engine.method.ParameterDef;
import io.modelmerge.engine.method.RecipeMethod;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The recipe {@code mergectl bench} runs for a method, built from what the method declares: the first input as
 * the base where it uses one, as many of the rest as it merges, each parameter whose example differs from its
 * default (a density below 1, a slerp's t), and for a companion input (a Fisher) the next model, which times like
 * one. A new method gets its bench recipe without a line here.
 *
 * @param inputs the model directories the recipe reads, for the I/O floor
 */
record BenchRecipe(String yaml, List<Path> inputs) {

    BenchRecipe {
        inputs = List.copyOf(inputs);
    }

    static BenchRecipe of(RecipeMethod method, List<Path> available) {
        if (method.needsMoreThanCheckpoints().isPresent()) {
            throw new IllegalArgumentException("bench measures merges of checkpoints, and " + method.name()
                    + " cannot be made of checkpoints alone: " + method.needsMoreThanCheckpoints().get());
        }
        Optional<Path> base = method.usesBase() ? Optional.of(available.getFirst()) : Optional.empty();
        List<Path> rest = method.usesBase() ? available.subList(1, available.size()) : available;
        List<Path> merged = rest.subList(0, Math.min(rest.size(), method.maxModels()));
        StringBuilder yaml = new StringBuilder("merge_method: " + method.name() + "\n");
        base.ifPresent(b -> yaml.append("base_model: ").append(b).append('\n'));
        yaml.append("models:\n");
        for (int m = 0; m < merged.size(); m++) {
            yaml.append("  - model: ").append(merged.get(m)).append('\n');
            List<String> parameters = new ArrayList<>();
            for (ParameterDef def : method.modelParameters()) {
                if (method.companionParameter().filter(def.name()::equals).isPresent()) {
                    parameters.add(def.name() + ": " + merged.get((m + 1) % merged.size()));
                } else if (def.exampleDiffersFromDefault()) {
                    parameters.add(def.name() + ": " + def.example().orElseThrow());
                }
            }
            if (!parameters.isEmpty()) {
                yaml.append("    parameters: {").append(String.join(", ", parameters)).append("}\n");
            }
        }
        List<String> global = new ArrayList<>();
        for (ParameterDef def : method.globalParameters()) {
            if (def.exampleDiffersFromDefault()) {
                global.add(def.name() + ": " + def.example().orElseThrow());
            }
        }
        if (!global.isEmpty()) {
            yaml.append("parameters: {").append(String.join(", ", global)).append("}\n");
        }
        List<Path> inputs = new ArrayList<>();
        base.ifPresent(inputs::add);
        inputs.addAll(merged);
        return new BenchRecipe(yaml.toString(), inputs);
    }
}
