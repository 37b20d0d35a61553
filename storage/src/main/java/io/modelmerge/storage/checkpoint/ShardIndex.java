package io.modelmerge.storage.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.modelmerge.storage.safetensors.JsonStrings;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * A {@code model.safetensors.index.json}: which shard holds each tensor, and the total size of the tensor data.
 * Written as transformers writes it ({@code json.dumps(index, indent=2, sort_keys=True) + "\n"}).
 */
public record ShardIndex(long totalSize, Map<String, String> weightMap) {

    public static final String FILE_NAME = "model.safetensors.index.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    public ShardIndex {
        weightMap = Collections.unmodifiableMap(new TreeMap<>(weightMap));
    }

    public static ShardIndex parse(String source, byte[] json) throws InvalidCheckpointException {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (IOException e) {
            throw new InvalidCheckpointException(source + ": not valid JSON: " + e.getMessage());
        }
        if (root == null || !root.isObject() || !root.path("weight_map").isObject()) {
            throw new InvalidCheckpointException(source + ": has no weight_map object");
        }
        Map<String, String> weightMap = new TreeMap<>();
        for (var entry : root.get("weight_map").properties()) {
            if (!entry.getValue().isTextual()) {
                throw new InvalidCheckpointException(source + ": weight_map entry '" + entry.getKey()
                        + "' is not a file name: " + entry.getValue());
            }
            weightMap.put(entry.getKey(), entry.getValue().asText());
        }
        JsonNode totalSize = root.path("metadata").path("total_size");
        return new ShardIndex(totalSize.canConvertToLong() ? totalSize.asLong() : -1, weightMap);
    }

    public byte[] toJson() {
        StringBuilder out = new StringBuilder();
        out.append("{\n  \"metadata\": {\n    \"total_size\": ").append(totalSize).append("\n  },\n  \"weight_map\": {");
        boolean first = true;
        for (Map.Entry<String, String> entry : weightMap.entrySet()) {
            out.append(first ? "\n    " : ",\n    ");
            JsonStrings.append(out, entry.getKey(), true).append(": ");
            JsonStrings.append(out, entry.getValue(), true);
            first = false;
        }
        out.append(first ? "}\n}\n" : "\n  }\n}\n");
        return out.toString().getBytes(StandardCharsets.UTF_8);
    }
}
