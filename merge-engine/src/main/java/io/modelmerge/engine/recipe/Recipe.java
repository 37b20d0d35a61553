package io.modelmerge.engine.recipe;

import io.modelmerge.engine.method.MergeMethods;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * A merge recipe in mergekit's configuration format.
 *
 * @param models     {@code models:} entries (empty when the recipe uses {@code slices:})
 * @param slices     {@code slices:} entries (empty when the recipe uses {@code models:})
 * @param parameters global {@code parameters:}
 * @param dtype      the dtype to compute in (mergekit's {@code dtype}); we always compute in F32 and use it as
 *                   the output dtype when {@code out_dtype} is absent
 * @param tokenizerSource {@code tokenizer_source}: {@code base} or a model whose tokenizer files the output takes
 *                   (the first input's when absent)
 * @param chatTemplate {@code chat_template}: {@code auto}, a template's name or a Jinja template, set in the
 *                   output's tokenizer files
 * @param computeInRecipeDtype {@code compute_dtype: recipe}: round inputs (and, where mergekit's method does, its
 *                   intermediate results) to the recipe's {@code dtype}, to reproduce a mergekit merge bit for bit;
 *                   {@code compute_dtype: float32}, the default, computes in F32 throughout
 * @param allowNonfinite {@code allow_nonfinite: true}: write an output holding NaN or infinity rather than
 *                   refuse it (off by default: such a merge fails naming the tensor)
 * @param yaml       the recipe's text, kept for the output's model card and {@code merge_recipe.yml}
 */
public record Recipe(String mergeMethod, Optional<String> baseModel, List<ModelSpec> models, List<Slice> slices,
                     Map<String, ParamValue> parameters, Optional<String> dtype, Optional<String> outDtype,
                     Optional<String> tokenizerSource, Optional<String> chatTemplate, boolean computeInRecipeDtype,
                     boolean allowNonfinite, String yaml) {

    public Recipe {
        models = List.copyOf(models);
        slices = List.copyOf(slices);
        parameters = Map.copyOf(parameters);
    }

    /** One input model and its per-model parameters. */
    public record ModelSpec(String model, Map<String, ParamValue> parameters) {
        public ModelSpec {
            parameters = Map.copyOf(parameters);
        }
    }

    /** One source of a slice: a model's layers [start, end). */
    public record SliceSource(String model, int layerStart, int layerEnd, Map<String, ParamValue> parameters) {
        public SliceSource {
            parameters = Map.copyOf(parameters);
        }

        public int layerCount() {
            return layerEnd - layerStart;
        }
    }

    /** One output slice: its sources merged layer by layer. */
    public record Slice(List<SliceSource> sources, Map<String, ParamValue> parameters, Optional<String> baseModel) {
        public Slice {
            sources = List.copyOf(sources);
            parameters = Map.copyOf(parameters);
        }
    }

    /**
     * The same recipe with model references replaced by {@code locations} (e.g. registry refs by the storage
     * URIs they resolved to); references not in the map stay. The YAML text is kept as written.
     */
    public Recipe withLocations(Map<String, String> locations) {
        UnaryOperator<String> at = ref -> locations.getOrDefault(ref, ref);
        return new Recipe(mergeMethod, baseModel.map(at), models.stream()
                .map(m -> new ModelSpec(at.apply(m.model()), relocated(m.parameters(), at))).toList(),
                slices.stream().map(slice -> new Slice(slice.sources().stream()
                        .map(src -> new SliceSource(at.apply(src.model()), src.layerStart(), src.layerEnd(),
                                relocated(src.parameters(), at))).toList(), slice.parameters(), slice.baseModel().map(at))).toList(),
                parameters, dtype, outDtype, tokenizerSource.map(t -> t.equals("base") ? t : at.apply(t)), chatTemplate,
                computeInRecipeDtype, allowNonfinite, yaml);
    }

    /** The same recipe written out as {@code outDtype}. */
    public Recipe withOutDtype(String outDtype) {
        return new Recipe(mergeMethod, baseModel, models, slices, parameters, dtype, Optional.of(outDtype),
                tokenizerSource, chatTemplate, computeInRecipeDtype, allowNonfinite, yaml);
    }

    /**
     * The per-model parameters whose values name other inputs, as the recipe's method declares them (the
     * {@code fisher} method's Fisher files, {@code regmean}'s Grams): pinned and relocated like models.
     */
    private List<String> inputParameters() {
        return MergeMethods.inputParameters(mergeMethod);
    }

    private Map<String, ParamValue> relocated(Map<String, ParamValue> parameters, UnaryOperator<String> at) {
        Map<String, ParamValue> out = new java.util.LinkedHashMap<>(parameters);
        for (String name : inputParameters()) {
            companion(parameters, name).ifPresent(ref -> out.put(name, new ParamValue.Scalar(at.apply(ref))));
        }
        return out;
    }

    /** The input a companion parameter names, if it is given as a single reference. */
    public static Optional<String> companion(Map<String, ParamValue> parameters, String name) {
        return parameters.get(name) instanceof ParamValue.Scalar(String ref) ? Optional.of(ref) : Optional.empty();
    }

    /**
     * Every input the recipe names, the base first when there is one, then the models, then their companion
     * inputs (Fisher files), without repeats.
     */
    public List<String> modelRefs() {
        LinkedHashSet<String> refs = new LinkedHashSet<>();
        baseModel.ifPresent(refs::add);
        models.forEach(m -> refs.add(m.model()));
        for (Slice slice : slices) {
            slice.baseModel().ifPresent(refs::add);
            slice.sources().forEach(s -> refs.add(s.model()));
        }
        for (String name : inputParameters()) {
            models.forEach(m -> companion(m.parameters(), name).ifPresent(refs::add));
            slices.forEach(slice -> slice.sources().forEach(s -> companion(s.parameters(), name).ifPresent(refs::add)));
        }
        return List.copyOf(refs);
    }
}
