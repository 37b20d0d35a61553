package io.modelmerge.engine.exec;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.kernel.RandomMask;
import io.modelmerge.engine.method.MergeMethod;
import io.modelmerge.engine.method.ParameterDef;
import io.modelmerge.engine.method.TensorParameters;
import io.modelmerge.engine.recipe.ParamValue;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.TensorInfo;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

/**
 * Turns a recipe and its opened inputs into one {@link PlannedTensor} per output tensor, resolving every
 * parameter as mergekit does (source or model parameters, then slice, then global, then the method's
 * default; gradients over the layer position t, t = 0 outside the layers) and checking everything that can be
 * checked before a byte is written: unknown parameters, missing or mistyped values, values outside the range
 * their method declares, the method's own checks, tensors missing or shaped differently across models.
 */
final class MergePlanner {
    private final Recipe recipe;
    private final MergeMethod method;
    private final List<InputModel> inputs;
    private final Map<String, Integer> indexOfRef = new HashMap<>();
    private final long seed;
    private final Optional<DType> outDtype;
    private final Optional<DType> computeDtype;
    /** The merge's notes: the planner's, and those methods add as they merge ({@link MergeMethod#NOTES}). */
    private final List<String> notes;
    private final ParameterResolver parameters;

    /**
     * @param strict refuse parameters the method does not take, rather than ignore them and note it
     * @param notes  where the planner's notes go, and each tensor's methods' (a list safe for several workers)
     */
    MergePlanner(Recipe recipe, MergeMethod method, List<InputModel> inputs, long seed, boolean strict,
                 List<String> notes) throws RecipeException {
        this.recipe = recipe;
        this.notes = notes;
        this.method = method;
        this.parameters = new ParameterResolver(method, recipe.parameters(), strict);
        this.inputs = inputs;
        this.seed = seed;
        for (int i = 0; i < inputs.size(); i++) {
            indexOfRef.put(inputs.get(i).ref(), i);
        }
        this.outDtype = dtype(recipe.outDtype().or(recipe::dtype));
        this.computeDtype = dtype(recipe.dtype());
        if (method.requiresBase() && recipe.baseModel().isEmpty()
                && recipe.slices().stream().allMatch(s -> s.baseModel().isEmpty())) {
            throw new RecipeException("merge_method " + method.name() + " needs a base_model");
        }
        checkParameterNames();
        notes.addAll(parameters.ignored());
    }


    private static Optional<DType> dtype(Optional<String> name) throws RecipeException {
        return name.isEmpty() ? Optional.empty() : Optional.of(RecipeParser.dtype(name.get()));
    }

    /** Per output tensor without a companion (Fisher) tensor in some model's companion: which, for the note. */
    private final List<String> withoutCompanion = new ArrayList<>();

    private void checkParameterNames() throws RecipeException {
        List<ParameterDef> any = new ArrayList<>(method.modelParameters());
        any.addAll(method.globalParameters());
        parameters.checkNames(recipe.parameters(), any, "parameters");
        for (Recipe.ModelSpec m : recipe.models()) {
            parameters.checkNames(m.parameters(), method.modelParameters(), "parameters of model " + m.model());
        }
        for (Recipe.Slice slice : recipe.slices()) {
            parameters.checkNames(slice.parameters(), any, "slice parameters");
            for (Recipe.SliceSource s : slice.sources()) {
                parameters.checkNames(s.parameters(), method.modelParameters(), "parameters of source " + s.model());
            }
        }
    }

    /** One merged model (or slice source) with its own parameters. */
    private record Member(String ref, Map<String, ParamValue> parameters) {
    }

    List<PlannedTensor> plan() throws RecipeException {
        List<PlannedTensor> planned = recipe.slices().isEmpty() ? planModels() : planSlices();
        if (!withoutCompanion.isEmpty()) {
            String name = method.companionParameter().orElseThrow();
            notes.add(withoutCompanion.size() + " tensor(s) have no " + name + " in every model's " + name
                    + " input and are merged as the weighted average instead: " + String.join(", ",
                    withoutCompanion.subList(0, Math.min(8, withoutCompanion.size())))
                    + (withoutCompanion.size() > 8 ? ", ..." : ""));
        }
        return planned;
    }

    private List<PlannedTensor> planModels() throws RecipeException {
        Optional<String> base = recipe.baseModel();
        List<Member> members = new ArrayList<>();
        for (Recipe.ModelSpec m : recipe.models()) {
            if (skippedAsBase(m.model(), base)) {
                continue;
            }
            members.add(new Member(m.model(), m.parameters()));
        }
        if (base.isPresent() && !method.usesBase()
                && recipe.models().stream().noneMatch(m -> m.model().equals(base.get()))) {
            // As mergekit: a base_model named but not listed is merged as one more input by a method that does
            // not subtract it (karcher weighs it like the others; linear needs a weight for it, e.g. a global one).
            members.add(new Member(base.get(), Map.of()));
            notes.add("base_model " + base.get() + " is merged as one more input, as mergekit adds it (merge_method "
                    + method.name() + " does not subtract a base)");
        }
        if (members.isEmpty()) {
            throw new RecipeException("recipe merges no model besides the base");
        }
        InputModel template = input(base.orElse(members.getFirst().ref()));
        int layers = 0;
        for (TensorInfo t : template.tensors()) {
            OptionalInt layer = LayerIndex.of(t.name());
            if (layer.isPresent()) {
                layers = Math.max(layers, layer.getAsInt() + 1);
            }
        }
        List<PlannedTensor> planned = new ArrayList<>();
        for (TensorInfo t : template.tensors()) {
            OptionalInt layer = LayerIndex.of(t.name());
            double position = layer.isPresent() ? position(layer.getAsInt(), layers) : 0.0;
            List<String> names = new ArrayList<>();
            members.forEach(m -> names.add(t.name()));
            planned.add(plan(t.name(), t, template.ref(), base.map(b -> t.name()), base, members, names, Map.of(), position));
        }
        noteExtraTensors(template, members);
        return planned;
    }

    private List<PlannedTensor> planSlices() throws RecipeException {
        List<PlannedTensor> planned = new ArrayList<>();
        Set<String> layerTensorsDone = new HashSet<>();
        int outputLayer = 0;
        for (Recipe.Slice slice : recipe.slices()) {
            Optional<String> base = slice.baseModel().or(recipe::baseModel);
            List<Recipe.SliceSource> memberSources = mergedSources(slice, base);
            List<Member> members = members(memberSources);
            if (members.isEmpty()) {
                throw new RecipeException("a slice merges no model besides the base");
            }
            Recipe.SliceSource first = slice.sources().getFirst();
            Recipe.SliceSource baseSource = base.flatMap(b -> slice.sources().stream()
                    .filter(s -> s.model().equals(b)).findFirst()).orElse(first);
            int count = first.layerCount();
            InputModel template = input(first.model());
            for (int i = 0; i < count; i++) {
                double position = position(i, count);
                int sourceLayer = first.layerStart() + i;
                boolean found = false;
                for (TensorInfo t : template.tensors()) {
                    OptionalInt layer = LayerIndex.of(t.name());
                    if (layer.isEmpty() || layer.getAsInt() != sourceLayer) {
                        continue;
                    }
                    found = true;
                    String outName = LayerIndex.withLayer(t.name(), outputLayer + i).orElseThrow();
                    List<String> names = new ArrayList<>();
                    for (Recipe.SliceSource s : memberSources) {
                        names.add(LayerIndex.withLayer(t.name(), s.layerStart() + i).orElseThrow());
                    }
                    int baseLayer = baseSource.layerStart() + i;
                    Optional<String> baseName = base.map(b -> LayerIndex.withLayer(t.name(), baseLayer).orElseThrow());
                    if (!layerTensorsDone.add(outName)) {
                        throw new RecipeException("slices produce layer tensor '" + outName + "' twice");
                    }
                    planned.add(plan(outName, t, template.ref(), baseName, base, members, names, slice.parameters(), position));
                }
                if (!found) {
                    throw new RecipeException("slice source " + first.model() + " has no layer " + sourceLayer
                            + " (layer_range [" + first.layerStart() + ", " + first.layerEnd() + "))");
                }
            }
            outputLayer += count;
        }
        // As mergekit: tensors before the layers (embeddings) come from the first slice's sources, with its
        // parameters; those after them (final norm, lm_head) from the last slice's; both at t = 0.
        List<PlannedTensor> before = outsideLayers(recipe.slices().getFirst(), true);
        List<PlannedTensor> all = new ArrayList<>(before);
        all.addAll(planned);
        all.addAll(outsideLayers(recipe.slices().getLast(), false));
        return all;
    }

    /** The tensors outside the layers that come before them ({@code before}) or after, planned from {@code slice}. */
    private List<PlannedTensor> outsideLayers(Recipe.Slice slice, boolean before) throws RecipeException {
        Optional<String> base = slice.baseModel().or(recipe::baseModel);
        List<Member> members = members(mergedSources(slice, base));
        InputModel template = input(slice.sources().getFirst().model());
        List<PlannedTensor> planned = new ArrayList<>();
        for (TensorInfo t : template.tensors()) {
            if (LayerIndex.of(t.name()).isEmpty() && LayerIndex.beforeLayers(t.name()) == before) {
                List<String> names = new ArrayList<>();
                members.forEach(m -> names.add(t.name()));
                planned.add(plan(t.name(), t, template.ref(), base.map(b -> t.name()), base, members, names,
                        slice.parameters(), 0.0));
            }
        }
        return planned;
    }

    /** Layer {@code index} of {@code count}'s position t in [0, 1] for gradients; 1 for a single layer, as mergekit. */
    private static double position(int index, int count) {
        return count > 1 ? index / (double) (count - 1) : 1.0;
    }

    /** Whether {@code ref} is the base, which contributes no task vector (mergekit skips it too). */
    private boolean skippedAsBase(String ref, Optional<String> base) {
        return method.usesBase() && base.isPresent() && ref.equals(base.get());
    }

    /** The sources of {@code slice} that are merged, the base left out. */
    private List<Recipe.SliceSource> mergedSources(Recipe.Slice slice, Optional<String> base) {
        return slice.sources().stream().filter(s -> !skippedAsBase(s.model(), base)).toList();
    }

    private static List<Member> members(List<Recipe.SliceSource> sources) {
        return sources.stream().map(s -> new Member(s.model(), s.parameters())).toList();
    }

    private void noteExtraTensors(InputModel template, List<Member> members) throws RecipeException {
        for (Member m : members) {
            for (TensorInfo t : input(m.ref()).tensors()) {
                if (template.tensor(t.name()).isEmpty()) {
                    notes.add("tensor '" + t.name() + "' of " + m.ref() + " is not in " + template.ref() + " and is left out");
                }
            }
        }
    }

    private InputModel input(String ref) throws RecipeException {
        Integer index = indexOfRef.get(ref);
        if (index == null) {
            throw new RecipeException("model '" + ref + "' was not opened");
        }
        return inputs.get(index);
    }

    private PlannedTensor.Input lookup(String ref, String tensor, TensorInfo like, String likeRef, String outName)
            throws RecipeException {
        InputModel model = input(ref);
        TensorInfo info = model.tensor(tensor).orElseThrow(() -> new RecipeException(
                "models do not line up: tensor '" + tensor + "' (for '" + outName + "') is missing from " + ref));
        if (!Arrays.equals(info.shape(), like.shape())) {
            throw new RecipeException("models do not line up: tensor '" + tensor + "' has shape "
                    + Arrays.toString(info.shape()) + " in " + ref + " but " + Arrays.toString(like.shape())
                    + " in " + likeRef);
        }
        return new PlannedTensor.Input(indexOfRef.get(ref), tensor);
    }

    private PlannedTensor plan(String outName, TensorInfo like, String likeRef, Optional<String> baseTensor,
                               Optional<String> baseRef, List<Member> members, List<String> names,
                               Map<String, ParamValue> sliceParameters, double position) throws RecipeException {
        Optional<PlannedTensor.Input> base = Optional.empty();
        if (baseRef.isPresent() && method.usesBase()) {
            base = Optional.of(lookup(baseRef.get(), baseTensor.orElseThrow(), like, likeRef, outName));
        }
        List<PlannedTensor.Input> sources = new ArrayList<>();
        for (int m = 0; m < members.size(); m++) {
            sources.add(lookup(members.get(m).ref(), names.get(m), like, likeRef, outName));
        }
        DType stored = like.dtype();
        boolean copy = !Floats.supports(stored);
        DType out = copy ? stored : outDtype.orElse(stored);
        TensorSpec spec = new TensorSpec(outName, out, like.shape());
        List<Map<String, Object>> perModel = new ArrayList<>();
        for (int m = 0; m < members.size(); m++) {
            // as mergekit, a model's parameters are resolved against the name of its own input tensor, which
            // differs from the output's where a slice's layer_range is offset
            perModel.add(parameters.resolve(method.modelParameters(), names.get(m), position,
                    members.get(m).parameters(), sliceParameters));
        }
        Map<String, Object> global = parameters.resolve(method.globalParameters(), outName, position, Map.of(), sliceParameters);
        global.put(MergeMethod.TENSOR_RANK, like.shape().length);
        global.put(MergeMethod.NOTES, notes);
        if (recipe.computeInRecipeDtype() && !copy && computeDtype.orElse(stored) != DType.F32) {
            global.put(MergeMethod.COMPUTE_DTYPE, computeDtype.orElse(stored));
        }
        if (method.companionParameter().isPresent()) {
            List<PlannedTensor.Input> companions = companions(method.companionParameter().get(), members, names, like, outName);
            global.put(MergeMethod.COMPANIONS_PRESENT, !companions.isEmpty());
            sources.addAll(companions);
        }
        long[] shape = like.shape();
        long columns = shape.length == 0 ? 1 : Math.max(1, shape[shape.length - 1]);
        TensorParameters parameters = new TensorParameters(outName, like.elementCount(), columns, perModel, global,
                RandomMask.tensorSeed(seed, outName));
        if (!copy) {
            validate(parameters, members);
        }
        if (copy) {
            notes.add("tensor '" + outName + "' (" + stored + ") is copied from " + inputs.get(sources.getFirst().model()).ref());
        }
        return new PlannedTensor(spec, base, sources, parameters, copy);
    }

    /**
     * Each member's companion tensor (its Fisher) of the same name and shape, in member order; empty when some
     * member's companion lacks it (the tensor falls back, and the notes say so). A companion belongs to one model,
     * so it is read from that model's own parameters, where {@link Recipe#modelRefs()} finds it to open.
     */
    private List<PlannedTensor.Input> companions(String parameter, List<Member> members, List<String> names,
                                                 TensorInfo like, String outName) throws RecipeException {
        List<PlannedTensor.Input> found = new ArrayList<>();
        for (int m = 0; m < members.size(); m++) {
            Optional<String> ref = Recipe.companion(members.get(m).parameters(), parameter);
            if (ref.isEmpty()) {
                throw new RecipeException("merge_method " + method.name() + " needs parameter '" + parameter
                        + "' (a path or reference) for model " + members.get(m).ref());
            }
            InputModel companion = input(ref.get());
            Optional<TensorInfo> info = companion.tensor(names.get(m));
            if (info.isEmpty()) {
                withoutCompanion.add(outName);
                return List.of();
            }
            if (!Arrays.equals(info.get().shape(), like.shape())) {
                throw new RecipeException(parameter + " tensor '" + names.get(m) + "' has shape "
                        + Arrays.toString(info.get().shape()) + " in " + ref.get() + " but the model's is "
                        + Arrays.toString(like.shape()));
            }
            found.add(new PlannedTensor.Input(indexOfRef.get(ref.get()), names.get(m)));
        }
        return found;
    }

    /** Every parameter within its declared range, then the method's own checks. */
    private void validate(TensorParameters p, List<Member> members) throws RecipeException {
        for (ParameterDef def : method.modelParameters()) {
            if (def.range().isEmpty()) {
                continue;
            }
            for (int m = 0; m < p.models(); m++) {
                double value = p.modelNumber(m, def.name());
                if (!def.range().get().contains(value)) {
                    throw new RecipeException(def.name() + " " + value + " for tensor '" + p.tensor() + "' of model "
                            + members.get(m).ref() + " is outside " + def.range().get());
                }
            }
        }
        for (ParameterDef def : method.globalParameters()) {
            if (def.range().isPresent() && !def.range().get().contains(p.number(def.name()))) {
                throw new RecipeException(def.name() + " " + p.number(def.name()) + " for tensor '" + p.tensor()
                        + "' is outside " + def.range().get());
            }
        }
        method.checkModelCount(p);
        method.check(p);
    }
}
