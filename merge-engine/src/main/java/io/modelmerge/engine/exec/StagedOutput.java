package io.modelmerge.engine.exec;

import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.storage.blob.LocalDirectories;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * A merge's output, written into a hidden directory beside {@code OUT_DIR} and moved into place whole when
 * complete: a failed or cancelled merge leaves nothing behind (closing deletes whatever is still staged).
 */
final class StagedOutput implements AutoCloseable {
    private final Path target;
    private final Path staging;

    /** Refuses a target that exists and is not an empty directory, before any work is done. */
    static void checkTarget(Path target) throws IOException, RecipeException {
        if (!Files.exists(target)) {
            return;
        }
        boolean empty = false;
        if (Files.isDirectory(target)) {
            try (Stream<Path> entries = Files.list(target)) {
                empty = entries.findAny().isEmpty();
            }
        }
        if (!empty) {
            throw new RecipeException("output " + target + " already exists and is not an empty directory");
        }
    }

    StagedOutput(Path target) {
        this.target = target;
        this.staging = target.toAbsolutePath().resolveSibling("." + target.getFileName() + ".partial-" + UUID.randomUUID());
    }

    /** Where the merge writes (not created here). */
    Path dir() {
        return staging;
    }

    /** Adds the recipe and the model card, then moves the staged directory into place (over an empty one). */
    void publish(Recipe recipe, List<String> notes) throws IOException {
        Files.writeString(staging.resolve("merge_recipe.yml"), recipe.yaml(), StandardCharsets.UTF_8);
        Files.writeString(staging.resolve("README.md"), ModelCard.write(target.getFileName().toString(), recipe, notes),
                StandardCharsets.UTF_8);
        publish();
    }

    /** Moves the staged directory into place (over an empty one). */
    void publish() throws IOException {
        if (Files.isDirectory(target)) {
            Files.delete(target);
        }
        Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
    }

    @Override
    public void close() throws IOException {
        LocalDirectories.delete(staging);
    }
}
