package io.modelmerge.engine.recipe;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.modelmerge.storage.safetensors.DType;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Reads mergekit YAML configs as they are: {@code merge_method}, {@code base_model}, {@code models} (each
 * {@code model} + {@code parameters}), {@code slices} ({@code sources} with {@code layer_range}, per-slice
 * {@code parameters} and {@code base_model}), global {@code parameters}, {@code dtype}, {@code out_dtype}, and
 * our {@code allow_nonfinite}.
 * Unknown keys are errors, named with their path in the recipe.
 */
public final class RecipeParser {
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    private static final Set<String> TOP_KEYS = Set.of("merge_method", "base_model", "models", "slices", "parameters",
            "dtype", "out_dtype", "tokenizer_source", "chat_template", "compute_dtype", "name", "allow_nonfinite");
    private static final Set<String> MODEL_KEYS = Set.of("model", "parameters");
    private static final Set<String> SLICE_KEYS = Set.of("sources", "parameters", "base_model");
    private static final Set<String> SOURCE_KEYS = Set.of("model", "layer_range", "parameters");

    private RecipeParser() {
    }

    public static Recipe parse(String yaml) throws RecipeException {
        JsonNode root;
        try {
            root = YAML.readTree(yaml);
        } catch (IOException e) {
            throw new RecipeException("recipe is not valid YAML: " + e.getMessage().lines().findFirst().orElse(""));
        }
        if (root == null || !root.isObject()) {
            throw new RecipeException("recipe must be a YAML mapping with merge_method and models or slices");
        }
        refuseUnsupported(root, "modules", "per-module merges (mergekit's modules: key) are not supported yet;"
                + " write the recipe with models or slices");
        refuseUnsupported(root, "tokenizer", "mergekit's tokenizer: settings (added tokens, embedding sources) are not"
                + " supported yet; tokenizer_source: base or a model's ref is");
        checkKeys(root, TOP_KEYS, "");
        String method = text(root, "merge_method", "").orElseThrow(() -> new RecipeException("recipe has no merge_method"));
        Optional<String> base = modelRef(root.get("base_model"), "base_model");
        List<Recipe.ModelSpec> models = new ArrayList<>();
        JsonNode modelsNode = root.get("models");
        if (modelsNode != null && !modelsNode.isNull()) {
            if (!modelsNode.isArray()) {
                throw new RecipeException("models must be a list");
            }
            for (int i = 0; i < modelsNode.size(); i++) {
                JsonNode entry = modelsNode.get(i);
                String where = "models[" + i + "]";
                if (!entry.isObject()) {
                    throw new RecipeException(where + " must be a mapping with 'model'");
                }
                checkKeys(entry, MODEL_KEYS, where + ".");
                String model = modelRef(entry.get("model"), where + ".model")
                        .orElseThrow(() -> new RecipeException(where + " has no model"));
                models.add(new Recipe.ModelSpec(model, parameters(entry.get("parameters"), where + ".parameters")));
            }
        }
        List<Recipe.Slice> slices = new ArrayList<>();
        JsonNode slicesNode = root.get("slices");
        if (slicesNode != null && !slicesNode.isNull()) {
            if (!slicesNode.isArray()) {
                throw new RecipeException("slices must be a list");
            }
            for (int i = 0; i < slicesNode.size(); i++) {
                slices.add(slice(slicesNode.get(i), "slices[" + i + "]"));
            }
        }
        if (models.isEmpty() == slices.isEmpty()) {
            throw new RecipeException("recipe must have either models or slices (it has "
                    + (models.isEmpty() ? "neither" : "both") + ")");
        }
        JsonNode allowNonfinite = root.get("allow_nonfinite");
        if (allowNonfinite != null && !allowNonfinite.isBoolean()) {
            throw new RecipeException("allow_nonfinite must be true or false, got " + allowNonfinite);
        }
        return new Recipe(method, base, models, slices, parameters(root.get("parameters"), "parameters"),
                text(root, "dtype", ""), text(root, "out_dtype", ""), tokenizerSource(root, base),
                text(root, "chat_template", ""), computeInRecipeDtype(root), allowNonfinite != null && allowNonfinite.booleanValue(),
                yaml);
    }

    private static boolean computeInRecipeDtype(JsonNode root) throws RecipeException {
        Optional<String> named = text(root, "compute_dtype", "");
        if (named.isEmpty() || named.get().equals("float32")) {
            return false;
        }
        if (named.get().equals("recipe")) {
            return true;
        }
        throw new RecipeException("compute_dtype must be float32 (the default: compute in F32) or recipe (round to the"
                + " recipe's dtype where mergekit does), got '" + named.get() + "'");
    }

    /**
     * The dtype a recipe's {@code dtype} or {@code out_dtype} names (PyTorch's and mergekit's spellings, with or
     * without {@code torch.}).
     */
    public static DType dtype(String name) throws RecipeException {
        String plain = name.startsWith("torch.") ? name.substring("torch.".length()) : name;
        return switch (plain) {
            case "bfloat16", "bf16" -> DType.BF16;
            case "float16", "fp16", "f16", "half" -> DType.F16;
            case "float32", "fp32", "f32", "float" -> DType.F32;
            default -> throw new RecipeException("unsupported dtype '" + name + "' (use bfloat16, float16 or float32)");
        };
    }

    private static Recipe.Slice slice(JsonNode node, String where) throws RecipeException {
        if (!node.isObject()) {
            throw new RecipeException(where + " must be a mapping with 'sources'");
        }
        refuseUnsupported(node, "residual_weight", "a slice's residual_weight (mergekit adds the base's layer"
                + " back, scaled) is not supported yet");
        checkKeys(node, SLICE_KEYS, where + ".");
        JsonNode sourcesNode = node.get("sources");
        if (sourcesNode == null || !sourcesNode.isArray() || sourcesNode.isEmpty()) {
            throw new RecipeException(where + ".sources must be a non-empty list");
        }
        List<Recipe.SliceSource> sources = new ArrayList<>();
        for (int j = 0; j < sourcesNode.size(); j++) {
            JsonNode source = sourcesNode.get(j);
            String at = where + ".sources[" + j + "]";
            if (!source.isObject()) {
                throw new RecipeException(at + " must be a mapping with 'model' and 'layer_range'");
            }
            checkKeys(source, SOURCE_KEYS, at + ".");
            String model = modelRef(source.get("model"), at + ".model")
                    .orElseThrow(() -> new RecipeException(at + " has no model"));
            JsonNode range = source.get("layer_range");
            if (range == null || !range.isArray() || range.size() != 2 || !range.get(0).canConvertToInt()
                    || !range.get(1).canConvertToInt() || range.get(0).asInt() < 0
                    || range.get(1).asInt() <= range.get(0).asInt()) {
                throw new RecipeException(at + ".layer_range must be [start, end) with 0 <= start < end, got " + range);
            }
            sources.add(new Recipe.SliceSource(model, range.get(0).asInt(), range.get(1).asInt(),
                    parameters(source.get("parameters"), at + ".parameters")));
        }
        int layers = sources.getFirst().layerCount();
        for (Recipe.SliceSource s : sources) {
            if (s.layerCount() != layers) {
                throw new RecipeException(where + ": sources span different layer counts (" + layers + " and "
                        + s.layerCount() + " for " + s.model() + ")");
            }
        }
        return new Recipe.Slice(sources, parameters(node.get("parameters"), where + ".parameters"),
                modelRef(node.get("base_model"), where + ".base_model"));
    }

    private static Optional<String> modelRef(JsonNode node, String where) throws RecipeException {
        if (node == null || node.isNull()) {
            return Optional.empty();
        }
        if (node.isTextual()) {
            return Optional.of(node.asText());
        }
        // mergekit also accepts {model: {path: ...}, lora: ...}; we take the path form.
        if (node.isObject() && node.path("model").path("path").isTextual()) {
            return Optional.of(node.path("model").path("path").asText());
        }
        throw new RecipeException(where + " must be a model reference (a path, s3:// URI or path+adapter), got " + node);
    }

    private static Optional<String> text(JsonNode root, String key, String where) throws RecipeException {
        JsonNode node = root.get(key);
        if (node == null || node.isNull()) {
            return Optional.empty();
        }
        if (!node.isValueNode()) {
            throw new RecipeException(where + key + " must be a string, got " + node);
        }
        return Optional.of(node.asText());
    }

    /** {@code tokenizer_source}: {@code base} (which needs a base_model) or a model; {@code union} is refused. */
    private static Optional<String> tokenizerSource(JsonNode root, Optional<String> base) throws RecipeException {
        Optional<String> source = text(root, "tokenizer_source", "");
        if (source.isEmpty()) {
            return source;
        }
        if (source.get().equals("union")) {
            throw new RecipeException("tokenizer_source: union (a merged vocabulary, embeddings re-ordered to it) is not"
                    + " supported yet; use base or one model's ref");
        }
        if (source.get().equals("base") && base.isEmpty()) {
            throw new RecipeException("tokenizer_source: base needs a base_model");
        }
        return source;
    }

    /** A key mergekit knows that we do not implement yet: refused by name, never ignored. */
    private static void refuseUnsupported(JsonNode node, String key, String why) throws RecipeException {
        if (node.has(key)) {
            throw new RecipeException("'" + key + "': " + why);
        }
    }

    private static void checkKeys(JsonNode node, Set<String> allowed, String where) throws RecipeException {
        for (var it = node.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!allowed.contains(key)) {
                throw new RecipeException("unknown key '" + where + key + "' (expected one of " + new java.util.TreeSet<>(allowed) + ")");
            }
        }
    }

    private static Map<String, ParamValue> parameters(JsonNode node, String where) throws RecipeException {
        Map<String, ParamValue> values = new LinkedHashMap<>();
        if (node == null || node.isNull()) {
            return values;
        }
        if (!node.isObject()) {
            throw new RecipeException(where + " must be a mapping of parameter names to values");
        }
        for (var it = node.properties().iterator(); it.hasNext(); ) {
            var entry = it.next();
            values.put(entry.getKey(), value(entry.getValue(), where + "." + entry.getKey()));
        }
        return values;
    }

    private static ParamValue value(JsonNode node, String where) throws RecipeException {
        if (node.isNumber()) {
            return new ParamValue.Scalar(node.asDouble());
        }
        if (node.isBoolean()) {
            return new ParamValue.Scalar(node.asBoolean());
        }
        if (node.isTextual()) {
            return new ParamValue.Scalar(node.asText());
        }
        if (node.isArray() && !node.isEmpty()) {
            boolean numbers = true;
            boolean mappings = true;
            boolean scalars = true;
            for (JsonNode item : node) {
                numbers &= item.isNumber();
                mappings &= item.isObject();
                scalars &= item.isValueNode() && !item.isNull();
            }
            if (numbers) {
                List<Double> points = new ArrayList<>();
                node.forEach(item -> points.add(item.asDouble()));
                return new ParamValue.Gradient(points);
            }
            if (mappings) {
                List<ParamValue.Filter> entries = new ArrayList<>();
                for (int i = 0; i < node.size(); i++) {
                    JsonNode item = node.get(i);
                    String at = where + "[" + i + "]";
                    checkKeys(item, Set.of("filter", "value"), at + ".");
                    if (!item.has("value")) {
                        throw new RecipeException(at + " has no value");
                    }
                    Optional<String> filter = item.hasNonNull("filter") ? Optional.of(item.get("filter").asText())
                            : Optional.empty();
                    entries.add(new ParamValue.Filter(filter, value(item.get("value"), at + ".value")));
                }
                return new ParamValue.Filtered(entries);
            }
            if (scalars) {
                List<Object> values = new ArrayList<>();
                for (JsonNode item : node) {
                    values.add(((ParamValue.Scalar) value(item, where)).value());
                }
                return new ParamValue.Steps(values);
            }
        }
        throw new RecipeException(where + " must be a number, a boolean, a gradient list of numbers or a filtered list,"
                + " got " + node);
    }
}
