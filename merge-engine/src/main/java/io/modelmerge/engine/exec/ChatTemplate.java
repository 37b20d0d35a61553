package io.modelmerge.engine.exec;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.storage.checkpoint.Checkpoint;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@code chat_template}: the chat template the output's tokenizer carries, as mergekit sets it. The value is
 * {@code auto} (the template most of the inputs carry, the first met winning a tie; nothing when none carries
 * one), the name of a template we ship ({@link #NAMED}), or a Jinja template written out. It is written where a
 * transformers tokenizer reads it: {@code chat_template.jinja} when the output has that file, else the
 * {@code chat_template} field of {@code tokenizer_config.json}; an output without a tokenizer gets none, with a note.
 */
final class ChatTemplate {
    static final List<String> NAMED = List.of("alpaca", "chatml", "llama3", "mistral");
    private static final ObjectMapper JSON = new ObjectMapper();

    private ChatTemplate() {
    }

    /** Refuses a value that is neither {@code auto}, a shipped name, nor plausibly a template (mergekit's test). */
    static void check(String value) throws RecipeException {
        if (!value.equals("auto") && !NAMED.contains(value) && (value.length() < 20 || !value.contains("{"))) {
            throw new RecipeException("chat_template '" + value + "' is neither auto, one of " + NAMED
                    + " nor a Jinja template");
        }
    }

    /** Sets the template in the tokenizer files in {@code dir}; returns the notes for the merge's card. */
    static List<String> apply(String value, List<InputModel> inputs, Path dir) throws IOException {
        Optional<String> template = resolve(value, inputs);
        if (template.isEmpty()) {
            return List.of("chat_template: auto found no chat template in any input; the output has none");
        }
        Path jinja = dir.resolve("chat_template.jinja");
        Path config = dir.resolve("tokenizer_config.json");
        if (Files.exists(jinja)) {
            Files.writeString(jinja, template.get());
        } else if (Files.exists(config)) {
            ObjectNode fields = (ObjectNode) JSON.readTree(config.toFile());
            fields.put("chat_template", template.get());
            JSON.writerWithDefaultPrettyPrinter().writeValue(config.toFile(), fields);
        } else {
            return List.of("chat_template was given but the output has no tokenizer files; no template was written");
        }
        return List.of("chat template: " + (value.equals("auto") || NAMED.contains(value) ? value : "as written"));
    }

    private static Optional<String> resolve(String value, List<InputModel> inputs) throws IOException {
        if (NAMED.contains(value)) {
            try (InputStream in = ChatTemplate.class.getResourceAsStream("chat_templates/" + value + ".jinja")) {
                return Optional.of(new String(in.readAllBytes(), StandardCharsets.UTF_8).strip());
            }
        }
        if (!value.equals("auto")) {
            return Optional.of(value);
        }
        Map<String, Integer> votes = new LinkedHashMap<>();
        for (InputModel input : inputs) {
            carried(input.checkpoint()).ifPresent(t -> votes.merge(t.strip(), 1, Integer::sum));
        }
        return votes.entrySet().stream().reduce((a, b) -> b.getValue() > a.getValue() ? b : a).map(Map.Entry::getKey);
    }

    /** The template an input's tokenizer carries: its {@code chat_template.jinja}, else its config's field. */
    private static Optional<String> carried(Checkpoint checkpoint) throws IOException {
        Optional<String> jinja = read(checkpoint, "chat_template.jinja");
        if (jinja.isPresent()) {
            return jinja;
        }
        Optional<String> config = read(checkpoint, "tokenizer_config.json");
        if (config.isEmpty()) {
            return Optional.empty();
        }
        JsonNode field = JSON.readTree(config.get()).path("chat_template");
        if (field.isTextual()) {
            return Optional.of(field.asText());
        }
        for (JsonNode named : field) { // a list of {name, template}: the default one, as transformers reads it
            if (named.path("name").asText().equals("default")) {
                return Optional.of(named.path("template").asText());
            }
        }
        return Optional.empty();
    }

    private static Optional<String> read(Checkpoint checkpoint, String name) throws IOException {
        return TokenizerSource.read(checkpoint, name).map(bytes -> new String(bytes, StandardCharsets.UTF_8));
    }
}
