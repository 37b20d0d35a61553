package io.modelmerge.engine.exec;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.modelmerge.engine.compute.ComputeBackend;
import io.modelmerge.engine.compute.Matrix;
import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.method.AdapterMethod;
import io.modelmerge.engine.method.ParameterDef;
import io.modelmerge.engine.method.Variant;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.storage.blob.BlobCache;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.Located;
import io.modelmerge.storage.checkpoint.AdapterConfig;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.checkpoint.CheckpointFormat;
import io.modelmerge.storage.checkpoint.CheckpointWriter;
import io.modelmerge.storage.checkpoint.LoraModule;
import io.modelmerge.storage.checkpoint.MappedCheckpoint;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * {@code cat} and {@code svd}: PEFT LoRA adapters of one base combined into one PEFT adapter, module by module,
 * as PEFT's add_weighted_adapter does. Each adapter i contributes wᵢ·sᵢ·BᵢAᵢ, where sᵢ is its own scaling
 * (lora_alpha/r, per module through rank_pattern and alpha_pattern, or alpha/√r with rsLoRA), applied exactly
 * once; the output's lora_alpha equals its rank, so its own scaling is 1.
 * <ul>
 *   <li>{@code cat}: A = [w₁s₁A₁; w₂s₂A₂; ...], B = [B₁ B₂ ...]; exact, rank Σ rᵢ.</li>
 *   <li>{@code svd}: Σ wᵢsᵢBᵢAᵢ in F32, truncated to {@code rank} (default the largest input rank) by its SVD
 *       (ND4J's LAPACK, on the small core of the stacked factors): B = U·S, A = Vᵀ. PEFT clamps the factors to
 *       a quantile; this does not.</li>
 *   <li>{@code robustmerge}: {@link RobustMerge} of the factors wᵢsᵢAᵢ and Bᵢ (adapters of one rank per
 *       module); the authors' code merges raw factors under the first adapter's scaling, which is the same
 *       where the adapters' scalings agree.</li>
 * </ul>
 * Adapters of different bases ({@code base_model_name_or_path}, or delta shapes) are refused. Adapters whose
 * target modules differ are refused unless {@code target_overlap: intersect}, which merges the modules all
 * adapters have and notes the rest. Modules stored in full ({@code modules_to_save}, e.g. a classifier head)
 * cannot be combined and are left out, with a note. Where module ranks differ, the config's
 * {@code rank_pattern} and {@code alpha_pattern} say so.
 */
final class AdapterMerge {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Recipe recipe;
    private final AdapterMethod method;
    private final List<String> notes = new ArrayList<>();

    private final ParameterResolver parameters;

    private AdapterMerge(Recipe recipe, AdapterMethod method, boolean strict) {
        this.recipe = recipe;
        this.method = method;
        this.parameters = new ParameterResolver(method, recipe.parameters(), strict);
    }

    /** Every check before data is read; returns the number of modules merged. */
    static int validate(Recipe recipe, AdapterMethod method, MergeOptions options) throws IOException, RecipeException {
        List<BlobStore> stores = new ArrayList<>();
        try {
            AdapterMerge merge = new AdapterMerge(recipe, method, options.strict());
            return merge.plan(merge.open(options, stores)).size();
        } finally {
            for (BlobStore store : stores) {
                store.close();
            }
        }
    }

    static MergeResult run(Recipe recipe, AdapterMethod method, Path outDir, MergeOptions options)
            throws IOException, RecipeException {
        long start = System.nanoTime();
        List<BlobStore> stores = new ArrayList<>();
        List<MappedCheckpoint> mapped = new ArrayList<>();
        try (StagedOutput output = new StagedOutput(outDir)) {
            AdapterMerge merge = new AdapterMerge(recipe, method, options.strict());
            List<Input> inputs = merge.open(options, stores);
            List<String> modules = merge.plan(inputs);
            BlobCache cache = new BlobCache(options.cacheDir(), options.cacheBytes());
            for (Input input : inputs) {
                mapped.add(input.checkpoint().map(cache));
            }
            Files.createDirectories(output.dir());
            long bytes;
            try {
                bytes = merge.write(inputs, mapped, modules, output.dir(), options.backend());
            } catch (NonFiniteOutput e) {
                throw new RecipeException(e.getMessage());
            }
            output.publish(recipe, merge.notes);
            return new MergeResult(outDir, List.of(Checkpoint.ADAPTER_WEIGHTS, AdapterConfig.FILE_NAME),
                    2 * modules.size(), bytes, java.time.Duration.ofNanos(System.nanoTime() - start), merge.notes);
        } finally {
            mapped.forEach(MappedCheckpoint::close);
            for (BlobStore store : stores) {
                store.close();
            }
        }
    }

    /** One input adapter: its ref, weight, checkpoint and modules by name. */
    private record Input(String ref, double weight, Checkpoint checkpoint, AdapterConfig config,
                         Map<String, LoraModule> modules) {
    }

    private List<Input> open(MergeOptions options, List<BlobStore> stores) throws IOException, RecipeException {
        if (!recipe.slices().isEmpty() || recipe.baseModel().isPresent()) {
            throw new RecipeException("merge_method " + method.name() + " combines PEFT adapters listed under"
                    + " models; it takes no base_model or slices");
        }
        if (recipe.tokenizerSource().isPresent() || recipe.chatTemplate().isPresent() || recipe.computeInRecipeDtype()) {
            throw new RecipeException("merge_method " + method.name() + " writes an adapter, which has no tokenizer"
                    + " and is computed in F32: tokenizer_source, chat_template and compute_dtype: recipe do not apply");
        }
        List<ParameterDef> any = new ArrayList<>(method.modelParameters());
        any.addAll(method.globalParameters());
        parameters.checkNames(recipe.parameters(), any, "parameters");
        List<Input> inputs = new ArrayList<>();
        for (Recipe.ModelSpec spec : recipe.models()) {
            parameters.checkNames(spec.parameters(), method.modelParameters(), "parameters of model " + spec.model());
            Located located = options.storage().locate(spec.model());
            stores.add(located.store());
            Checkpoint checkpoint = Checkpoint.open(located.store(), located.key());
            if (checkpoint.format() != CheckpointFormat.PEFT_ADAPTER) {
                throw new RecipeException("model '" + spec.model() + "' is not a PEFT adapter (no adapter_config.json);"
                        + " merge_method " + method.name() + " combines adapters");
            }
            Map<String, LoraModule> modules = new TreeMap<>();
            for (LoraModule module : checkpoint.loraModules()) {
                modules.put(module.module(), module);
            }
            double weight = (Double) parameters.resolve(method.modelParameters(), "", 0, spec.parameters(), Map.of())
                    .get(AdapterMethod.WEIGHT.name());
            inputs.add(new Input(spec.model(), weight, checkpoint, checkpoint.adapterConfig().orElseThrow(), modules));
        }
        if (inputs.size() < 2) {
            throw new RecipeException("merge_method " + method.name() + " needs at least two adapters");
        }
        notes.addAll(parameters.ignored());
        return inputs;
    }

    /** The merge's global parameters (target_overlap, and rank for svd), resolved and typed. */
    private Map<String, Object> globals() throws RecipeException {
        return parameters.resolve(method.globalParameters(), "", 0, Map.of(), Map.of());
    }

    /** Checks the adapters fit together; returns the modules to merge. */
    private List<String> plan(List<Input> inputs) throws RecipeException {
        Input first = inputs.getFirst();
        for (Input input : inputs.subList(1, inputs.size())) {
            Optional<String> a = first.config().baseModel();
            Optional<String> b = input.config().baseModel();
            if (a.isPresent() && b.isPresent() && !a.get().equals(b.get())) {
                throw new RecipeException("adapters of different base models: " + first.ref() + " adapts '" + a.get()
                        + "' but " + input.ref() + " adapts '" + b.get() + "'");
            }
            if (input.config().fanInFanOut() != first.config().fanInFanOut()) {
                throw new RecipeException("adapters disagree on fan_in_fan_out: " + first.ref() + " and " + input.ref());
            }
        }
        Map<String, Object> globals = globals();
        AdapterMethod.TargetOverlap overlap = Variant.parse(AdapterMethod.TargetOverlap.class,
                (String) globals.get(AdapterMethod.TARGET_OVERLAP.name())).orElseThrow();
        TreeSet<String> shared = new TreeSet<>(first.modules().keySet());
        TreeSet<String> all = new TreeSet<>(first.modules().keySet());
        for (Input input : inputs) {
            shared.retainAll(input.modules().keySet());
            all.addAll(input.modules().keySet());
        }
        if (!shared.equals(all)) {
            TreeSet<String> partial = new TreeSet<>(all);
            partial.removeAll(shared);
            if (overlap == AdapterMethod.TargetOverlap.REFUSE) {
                throw new RecipeException("adapters adapt different modules (" + partial.size() + " not in all of them, e.g. '"
                        + partial.first() + "'); set target_overlap: intersect to merge the " + shared.size()
                        + " modules they share");
            }
            notes.add(partial.size() + " module(s) not adapted by every adapter are left out (target_overlap: intersect),"
                    + " e.g. " + partial.first());
        }
        if (shared.isEmpty()) {
            throw new RecipeException("the adapters share no adapted module");
        }
        for (String module : shared) {
            long[] shape = first.modules().get(module).deltaShape();
            for (Input input : inputs) {
                long[] other = input.modules().get(module).deltaShape();
                if (!Arrays.equals(shape, other)) {
                    throw new RecipeException("adapters of different base models: module '" + module + "' changes a "
                            + Arrays.toString(shape) + " weight in " + first.ref() + " but " + Arrays.toString(other)
                            + " in " + input.ref());
                }
            }
        }
        for (Input input : inputs) {
            if (!input.checkpoint().savedModuleTensors().isEmpty()) {
                notes.add(input.ref() + ": " + input.checkpoint().savedModuleTensors().size() + " tensor(s) saved in full"
                        + " (modules_to_save, e.g. '" + input.checkpoint().savedModuleTensors().getFirst().name()
                        + "') cannot be combined and are left out");
            }
        }
        if (method == AdapterMethod.ROBUST) {
            for (String module : shared) {
                int rank = first.modules().get(module).rank();
                for (Input input : inputs) {
                    if (input.modules().get(module).rank() != rank) {
                        throw new RecipeException("robustmerge merges factors of one rank: module '" + module
                                + "' has rank " + rank + " in " + first.ref() + " but "
                                + input.modules().get(module).rank() + " in " + input.ref());
                    }
                }
            }
        }
        if (method == AdapterMethod.SVD) {
            double rank = (Double) globals.get(AdapterMethod.RANK.name());
            if (!AdapterMethod.RANK.range().orElseThrow().contains(rank) || rank != Math.rint(rank)) {
                throw new RecipeException("parameter 'rank' must be a positive integer (or 0 for the largest input"
                        + " rank), got " + rank);
            }
        }
        return List.copyOf(shared);
    }

    /** The merged factors of one module: A [r, in] and B [out, r], row-major. */
    private record Factors(int rank, long in, long out, float[] a, float[] b) {
    }

    private long write(List<Input> inputs, List<MappedCheckpoint> mapped, List<String> modules, Path dir,
                       ComputeBackend backend)
            throws IOException, RecipeException {
        Map<String, Factors> merged = new LinkedHashMap<>();
        int largestInputRank = inputs.stream().flatMap(i -> i.modules().values().stream()).mapToInt(LoraModule::rank).max().orElse(1);
        int given = method == AdapterMethod.SVD ? (int) (double) (Double) globals().get(AdapterMethod.RANK.name()) : 0;
        int rank = given == 0 ? largestInputRank : given;
        for (String module : modules) {
            merged.put(module, method == AdapterMethod.CAT ? cat(inputs, mapped, module)
                    : method == AdapterMethod.SVD ? svd(inputs, mapped, module, rank, backend)
                    : robust(inputs, mapped, module));
        }
        List<TensorSpec> specs = new ArrayList<>();
        for (var e : merged.entrySet()) {
            String prefix = Checkpoint.PEFT_PREFIX + e.getKey();
            specs.add(new TensorSpec(prefix + ".lora_A.weight", DType.F32, new long[] {e.getValue().rank(), e.getValue().in()}));
            specs.add(new TensorSpec(prefix + ".lora_B.weight", DType.F32, new long[] {e.getValue().out(), e.getValue().rank()}));
        }
        long bytes = 0;
        try (CheckpointWriter writer = CheckpointWriter.create(dir, specs, Map.of("format", "pt"), Long.MAX_VALUE);
             Arena arena = Arena.ofConfined()) {
            for (var e : merged.entrySet()) {
                String prefix = Checkpoint.PEFT_PREFIX + e.getKey();
                bytes += put(writer, arena, prefix + ".lora_A.weight", e.getValue().a());
                bytes += put(writer, arena, prefix + ".lora_B.weight", e.getValue().b());
            }
            writer.commit();
        }
        Files.move(dir.resolve(Checkpoint.SINGLE_FILE), dir.resolve(Checkpoint.ADAPTER_WEIGHTS));
        writeConfig(inputs.getFirst(), merged, dir.resolve(AdapterConfig.FILE_NAME));
        return bytes;
    }

    private long put(CheckpointWriter writer, Arena arena, String name, float[] values) throws IOException {
        if (!recipe.allowNonfinite()) {
            NonFiniteOutput.check(name, 0, values, values.length, DType.F32);
        }
        MemorySegment data = arena.allocate(values.length * 4L);
        Floats.narrow(values, values.length, data, DType.F32, 0);
        writer.write(name, 0, data);
        return data.byteSize();
    }

    /** RobustMerge of the module's factors, each adapter's A carrying its weight and scaling (wᵢsᵢAᵢ). */
    private Factors robust(List<Input> inputs, List<MappedCheckpoint> mapped, String module) throws RecipeException {
        Map<String, Object> globals = globals();
        LoraModule shape = inputs.getFirst().modules().get(module);
        int rank = shape.rank();
        float[][] a = new float[inputs.size()][];
        float[][] b = new float[inputs.size()][];
        for (int k = 0; k < inputs.size(); k++) {
            LoraModule m = inputs.get(k).modules().get(module);
            float factor = (float) (inputs.get(k).weight() * m.scaling());
            a[k] = Floats.widen(mapped.get(k).tensor(m.a().name()));
            for (int i = 0; i < a[k].length; i++) {
                a[k][i] *= factor;
            }
            b[k] = Floats.widen(mapped.get(k).tensor(m.b().name()));
        }
        float[][] merged = RobustMerge.merge(a, b, rank, (Double) globals.get(AdapterMethod.KEEP.name()),
                (Double) globals.get(AdapterMethod.ATT_RATIO.name()),
                (Double) globals.get(AdapterMethod.FUSE_WEIGHT.name()));
        return new Factors(rank, shape.a().dim(1), shape.b().dim(0), merged[0], merged[1]);
    }

    /** A = [w₁s₁A₁; ...] stacked by rows, B = [B₁ ...] side by side. */
    private static Factors cat(List<Input> inputs, List<MappedCheckpoint> mapped, String module) {
        LoraModule shape = inputs.getFirst().modules().get(module);
        long in = shape.a().dim(1);
        long out = shape.b().dim(0);
        int total = inputs.stream().mapToInt(i -> i.modules().get(module).rank()).sum();
        float[] a = new float[Math.toIntExact(total * in)];
        float[] b = new float[Math.toIntExact(out * total)];
        int at = 0;
        for (int k = 0; k < inputs.size(); k++) {
            Input input = inputs.get(k);
            LoraModule m = input.modules().get(module);
            int r = m.rank();
            float factor = (float) (input.weight() * m.scaling());
            float[] ai = Floats.widen(mapped.get(k).tensor(m.a().name()));
            float[] bi = Floats.widen(mapped.get(k).tensor(m.b().name()));
            for (int i = 0; i < ai.length; i++) {
                a[Math.toIntExact(at * in) + i] = factor * ai[i];
            }
            for (int row = 0; row < out; row++) {
                System.arraycopy(bi, row * r, b, Math.toIntExact(row * total + at), r);
            }
            at += r;
        }
        return new Factors(total, in, out, a, b);
    }

    /**
     * The best rank-r approximation of Σ wᵢsᵢBᵢAᵢ = B_cat·A_cat (the cat factors, inner rank R = Σ rᵢ), from the
     * backend: with B_cat = Q_b·R_b and A_catᵀ = Q_a·R_a (QR), the sum is Q_b·(R_b·R_aᵀ)·Q_aᵀ, so the SVD of the
     * small R×R core gives the sum's SVD, at a fraction of the work of an SVD of the full [out, in] sum. Then
     * B = U_r·S_r, A = V_rᵀ.
     */
    private static Factors svd(List<Input> inputs, List<MappedCheckpoint> mapped, String module, int rank,
                               ComputeBackend backend) {
        Factors cat = cat(inputs, mapped, module);
        ComputeBackend.Factors best = backend.bestRank(new Matrix((int) cat.out(), cat.rank(), cat.b()),
                new Matrix(cat.rank(), (int) cat.in(), cat.a()), rank);
        return new Factors(best.a().rows(), cat.in(), cat.out(), best.a().values(), best.b().values());
    }

    /** The first adapter's config with the merged ranks; lora_alpha = rank so the merged scaling is 1. */
    private void writeConfig(Input first, Map<String, Factors> merged, Path file) throws IOException {
        ObjectNode config;
        try (var in = first.checkpoint().store().read(configKey(first))) {
            config = (ObjectNode) JSON.readTree(in);
        }
        Map<Integer, Integer> counts = new HashMap<>();
        merged.values().forEach(f -> counts.merge(f.rank(), 1, Integer::sum));
        int r = counts.entrySet().stream().max(Map.Entry.<Integer, Integer>comparingByValue()
                .thenComparing(Map.Entry.comparingByKey())).orElseThrow().getKey();
        ObjectNode ranks = JSON.createObjectNode();
        ObjectNode alphas = JSON.createObjectNode();
        TreeSet<String> targets = new TreeSet<>();
        for (var e : merged.entrySet()) {
            targets.add(e.getKey().substring(e.getKey().lastIndexOf('.') + 1));
            if (e.getValue().rank() != r) {
                ranks.put(e.getKey(), e.getValue().rank());
                alphas.put(e.getKey(), e.getValue().rank());
            }
        }
        config.put("r", r);
        config.put("lora_alpha", r);
        config.set("rank_pattern", ranks);
        config.set("alpha_pattern", alphas);
        config.set("target_modules", JSON.valueToTree(List.copyOf(targets)));
        config.put("use_rslora", false);
        config.put("use_dora", false);
        config.putNull("modules_to_save");
        config.put("inference_mode", true);
        JSON.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), config);
    }

    /** The adapter's adapter_config.json: beside its weights file. */
    private static String configKey(Input input) {
        String weights = input.checkpoint().files().getFirst().blob().key();
        return weights.substring(0, weights.lastIndexOf('/') + 1) + AdapterConfig.FILE_NAME;
    }
}
