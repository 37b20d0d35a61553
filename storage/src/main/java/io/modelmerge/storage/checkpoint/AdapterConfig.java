package io.modelmerge.storage.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The parts of a PEFT LoRA {@code adapter_config.json} that decide how the adapter changes its base model.
 * Rank and alpha per module follow PEFT: a {@code rank_pattern}/{@code alpha_pattern} key applies to a module
 * whose name matches {@code (.*\.)?KEY$}; scaling is alpha/r, or alpha/√r with {@code use_rslora}.
 *
 * @param targetModules       module names (a module matches when its name is one of them or ends with
 *                            {@code .NAME}), or one regular expression matched against the whole name
 * @param targetModulesRegex  true when {@code targetModules} holds a single regular expression
 * @param modulesToSave       modules stored in full in the adapter
 */
public record AdapterConfig(String peftType, int r, double loraAlpha, List<String> targetModules,
                            boolean targetModulesRegex, boolean fanInFanOut, boolean useRslora,
                            Map<String, Integer> rankPattern, Map<String, Double> alphaPattern,
                            List<String> modulesToSave, Optional<String> baseModel, Optional<String> taskType) {

    public static final String FILE_NAME = "adapter_config.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    public AdapterConfig {
        targetModules = List.copyOf(targetModules);
        rankPattern = Map.copyOf(rankPattern);
        alphaPattern = Map.copyOf(alphaPattern);
        modulesToSave = List.copyOf(modulesToSave);
        if (r <= 0) {
            throw new IllegalArgumentException("LoRA rank r must be positive, got " + r);
        }
    }

    /**
     * Reads an {@code adapter_config.json}.
     *
     * @param source names the file in error messages
     */
    public static AdapterConfig parse(String source, byte[] json) throws InvalidCheckpointException {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (IOException e) {
            throw new InvalidCheckpointException(source + ": not valid JSON: " + e.getMessage());
        }
        if (root == null || !root.isObject()) {
            throw new InvalidCheckpointException(source + ": not a JSON object");
        }
        String peftType = root.path("peft_type").asText("LORA");
        if (!peftType.equals("LORA")) {
            throw new InvalidCheckpointException(source + ": peft_type " + peftType + " is not supported (only LORA)");
        }
        JsonNode r = root.get("r");
        if (r == null || !r.canConvertToInt() || r.asInt() <= 0) {
            throw new InvalidCheckpointException(source + ": r must be a positive integer, got " + r);
        }
        JsonNode alpha = root.get("lora_alpha");
        if (alpha != null && !alpha.isNumber()) {
            throw new InvalidCheckpointException(source + ": lora_alpha must be a number, got " + alpha);
        }
        JsonNode targets = root.path("target_modules");
        boolean regex = targets.isTextual();
        List<String> targetModules = regex ? List.of(targets.asText()) : strings(source, "target_modules", targets);
        Map<String, Integer> rankPattern = new LinkedHashMap<>();
        root.path("rank_pattern").properties().forEach(e -> rankPattern.put(e.getKey(), e.getValue().asInt()));
        Map<String, Double> alphaPattern = new LinkedHashMap<>();
        root.path("alpha_pattern").properties().forEach(e -> alphaPattern.put(e.getKey(), e.getValue().asDouble()));
        return new AdapterConfig(peftType, r.asInt(), alpha == null ? 8 : alpha.asDouble(), targetModules, regex,
                root.path("fan_in_fan_out").asBoolean(false), root.path("use_rslora").asBoolean(false),
                rankPattern, alphaPattern, strings(source, "modules_to_save", root.path("modules_to_save")),
                text(root, "base_model_name_or_path"), text(root, "task_type"));
    }

    private static Optional<String> text(JsonNode root, String field) {
        JsonNode node = root.get(field);
        return node == null || node.isNull() ? Optional.empty() : Optional.of(node.asText());
    }

    private static List<String> strings(String source, String field, JsonNode node) throws InvalidCheckpointException {
        List<String> values = new ArrayList<>();
        if (node.isMissingNode() || node.isNull()) {
            return values;
        }
        if (!node.isArray()) {
            throw new InvalidCheckpointException(source + ": " + field + " must be a list of strings, got " + node);
        }
        for (JsonNode item : node) {
            values.add(item.asText());
        }
        return values;
    }

    /** Whether PEFT would adapt the module named {@code module} (e.g. {@code transformer.h.0.attn.c_attn}). */
    public boolean targets(String module) {
        if (targetModulesRegex) {
            return Pattern.compile(targetModules.getFirst()).matcher(module).matches();
        }
        for (String target : targetModules) {
            if (module.equals(target) || module.endsWith("." + target)) {
                return true;
            }
        }
        return false;
    }

    public int rankFor(String module) {
        return patternValue(rankPattern, module).orElse(r);
    }

    public double alphaFor(String module) {
        return patternValue(alphaPattern, module).orElse(loraAlpha);
    }

    /** The factor PEFT multiplies B·A by for {@code module}. */
    public double scalingFor(String module) {
        int rank = rankFor(module);
        double alpha = alphaFor(module);
        return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
    }

    private static <V> Optional<V> patternValue(Map<String, V> patterns, String module) {
        for (Map.Entry<String, V> entry : patterns.entrySet()) {
            if (Pattern.compile("(.*\\.)?(" + entry.getKey() + ")$").matcher(module).matches()) {
                return Optional.of(entry.getValue());
            }
        }
        return Optional.empty();
    }
}
