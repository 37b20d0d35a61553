package io.modelmerge.engine.exec;

import io.modelmerge.engine.delta.DeltaEdit;
import io.modelmerge.engine.delta.DeltaManifest;
import io.modelmerge.engine.method.DeltaMethod;
import io.modelmerge.engine.method.Variant;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** Runs a {@link DeltaMethod} recipe: the base_model is the base, the one model the fine-tune. */
final class DeltaRecipes {
    private DeltaRecipes() {
    }

    /** The checks before any data is read: the inputs, the parameters; returns the fine-tune's tensor count. */
    static int validate(Recipe recipe, DeltaMethod method, MergeOptions options) throws IOException, RecipeException {
        String[] refs = refs(recipe, method);
        edit(recipe, method, options);
        try (InputModel base = InputModel.open(refs[0], options, null);
             InputModel fineTune = InputModel.open(refs[1], options, null)) {
            if (base.tensors().stream().noneMatch(t -> fineTune.tensor(t.name()).isPresent())) {
                throw new RecipeException(refs[1] + " shares no tensor with " + refs[0] + ": not a fine-tune of it");
            }
            return fineTune.tensors().size();
        }
    }

    static MergeResult run(Recipe recipe, DeltaMethod method, Path outDir, MergeOptions options,
                           MergeExecutor.MergeListener listener, java.util.concurrent.atomic.AtomicBoolean cancelled)
            throws IOException, RecipeException {
        long start = System.nanoTime();
        String[] refs = refs(recipe, method);
        Object edit = edit(recipe, method, options);
        int tensors;
        long bytes;
        List<String> notes;
        if (edit instanceof DeltaLowRank.Spec spec) {
            DeltaLowRank.Result result = new DeltaLowRank(options, listener, cancelled).run(refs[0], refs[1], spec, outDir);
            tensors = 2 * result.ranks().size() + result.savedWhole().size();
            bytes = Files.size(outDir.resolve("adapter_model.safetensors"));
            notes = List.of("LoRA of " + result.ranks().size() + " modules, ranks " + new java.util.TreeSet<>(
                    result.ranks().values()) + (result.savedWhole().isEmpty() ? "" : "; saved whole: " + result.savedWhole()));
        } else {
            DeltaManifest m = new DeltaExtraction(options, listener, cancelled).run(refs[0], refs[1], (DeltaEdit) edit,
                    outDir);
            tensors = m.tensors().size();
            bytes = m.deltaBytes();
            notes = List.of(String.format(java.util.Locale.ROOT, "delta %s: %.2fx smaller than the fine-tune%s",
                    m.operation(), m.compressionRatio(), m.worst().map(w -> String.format(java.util.Locale.ROOT,
                            "; worst tensor %s, relative error %.3g", w.name(), w.relativeError())).orElse("")));
        }
        List<String> files;
        try (Stream<Path> listed = Files.list(outDir)) {
            files = listed.map(p -> p.getFileName().toString()).sorted().toList();
        }
        return new MergeResult(outDir, files, tensors, bytes, Duration.ofNanos(System.nanoTime() - start), notes);
    }

    /** The base's and the fine-tune's references. */
    private static String[] refs(Recipe recipe, DeltaMethod method) throws RecipeException {
        if (recipe.baseModel().isEmpty() || recipe.models().size() != 1 || !recipe.slices().isEmpty()) {
            throw new RecipeException("merge_method " + method.name() + " takes a base_model and exactly one model (the"
                    + " fine-tune), no slices");
        }
        return new String[] {recipe.baseModel().get(), recipe.models().getFirst().model()};
    }

    /** The edit the recipe's parameters describe: a {@link DeltaEdit}, or a {@link DeltaLowRank.Spec}. */
    private static Object edit(Recipe recipe, DeltaMethod method, MergeOptions options) throws RecipeException {
        ParameterResolver resolver = new ParameterResolver(method, recipe.parameters(), options.strict());
        resolver.checkNames(recipe.parameters(), method.globalParameters(), "parameters");
        resolver.checkNames(recipe.models().getFirst().parameters(), List.of(), "parameters of model "
                + recipe.models().getFirst().model());
        Map<String, Object> p = resolver.resolve(method.globalParameters(), "", 0, Map.of(), Map.of());
        try {
            return edit(method, p, options);
        } catch (IllegalArgumentException e) {
            throw new RecipeException(method.name() + ": " + e.getMessage());
        }
    }

    private static Object edit(DeltaMethod method, Map<String, Object> p, MergeOptions options) {
        return switch (method.kind()) {
            case EXTRACT -> new DeltaEdit.Dense();
            case SPARSIFY -> variant(p, "method", DeltaMethod.Sparsifier.class) == DeltaMethod.Sparsifier.DARE
                    ? new DeltaEdit.Dare(number(p, "p"), DeltaEdit.DareRescale.valueOf(
                            variant(p, "rescale", DeltaMethod.DareScale.class).name()), options.seed())
                    : new DeltaEdit.Magnitude(number(p, "density"), DeltaEdit.Scope.valueOf(
                            variant(p, "scope", DeltaMethod.Within.class).name()));
            case BITDELTA -> new DeltaEdit.BitDelta(DeltaEdit.Scope.valueOf(variant(p, "scope", DeltaMethod.Within.class)
                    .name()), pattern(p, "include"), pattern(p, "exclude"));
            case LOWRANK -> new DeltaLowRank.Spec((int) number(p, "max_rank"), number(p, "sv_epsilon"),
                    number(p, "energy"), pattern(p, "include"), pattern(p, "exclude"));
        };
    }

    /** A regex parameter; a malformed one is refused naming the parameter. */
    private static Pattern pattern(Map<String, Object> p, String name) {
        String regex = String.valueOf(p.get(name));
        try {
            return Pattern.compile(regex);
        } catch (java.util.regex.PatternSyntaxException e) {
            throw new IllegalArgumentException("parameter " + name + " is not a regular expression: '" + regex + "' ("
                    + e.getDescription() + ")");
        }
    }

    private static double number(Map<String, Object> p, String name) {
        return ((Number) p.get(name)).doubleValue();
    }

    private static <E extends Enum<E> & Variant> E variant(Map<String, Object> p, String name, Class<E> type) {
        Object value = p.get(name);
        return type.isInstance(value) ? type.cast(value) : Variant.parse(type, String.valueOf(value)).orElseThrow();
    }
}
