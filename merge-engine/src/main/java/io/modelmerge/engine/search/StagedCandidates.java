package io.modelmerge.engine.search;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.storage.blob.LocalDirectories;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;

/** What the searches share: the staging directory their candidates are merged into, recipe text, reports. */
final class StagedCandidates {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ObjectMapper REPORTS = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT);

    private StagedCandidates() {
    }

    /**
     * An empty directory beside the output {@code out} (which must not exist yet) for a search's candidates
     * ({@code kind}: the search's name).
     */
    static Path create(Path out, String kind) throws IOException, RecipeException {
        if (Files.exists(out)) {
            throw new RecipeException("output '" + out + "' already exists");
        }
        Path staging = out.resolveSibling("." + out.getFileName() + "." + kind + "-candidates");
        LocalDirectories.delete(staging);
        return Files.createDirectories(staging);
    }

    /** A YAML double-quoted scalar (JSON's string syntax, which YAML reads). */
    static String quoted(String value) {
        try {
            return JSON.writeValueAsString(value);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A search's report as indented JSON with snake_case names. */
    static byte[] report(Object result) {
        try {
            return REPORTS.writeValueAsBytes(result);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A number in plain decimal, which YAML reads back to the same double. */
    static String number(double value) {
        return BigDecimal.valueOf(value).toPlainString();
    }
}
