package io.modelmerge.engine.exec;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Keeps a transformers config.json true to a merge that stacks slices: {@code num_hidden_layers} becomes the
 * number of layers the slices produce, as mergekit writes it.
 */
final class LayerCount {
    private static final ObjectMapper JSON = new ObjectMapper();

    private LayerCount() {
    }

    /** Rewrites {@code config}'s layer count if it differs; returns the note saying so (none if unchanged). */
    static List<String> update(Path config, int layers) throws IOException {
        if (!Files.isRegularFile(config)) {
            return List.of();
        }
        if (!(JSON.readTree(config.toFile()) instanceof ObjectNode node) || !node.has("num_hidden_layers")
                || node.get("num_hidden_layers").asInt() == layers) {
            return List.of();
        }
        int before = node.get("num_hidden_layers").asInt();
        node.put("num_hidden_layers", layers);
        JSON.writerWithDefaultPrettyPrinter().writeValue(config.toFile(), node);
        return List.of("config.json: num_hidden_layers " + before + " -> " + layers + " (the slices' layers)");
    }
}
