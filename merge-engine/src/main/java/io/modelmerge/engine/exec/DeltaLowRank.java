package io.modelmerge.engine.exec;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.modelmerge.engine.compute.ComputeBackend;
import io.modelmerge.engine.compute.Matrix;
import io.modelmerge.engine.delta.DeltaEdit;
import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.storage.blob.BlobCache;
import io.modelmerge.storage.checkpoint.AdapterConfig;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.checkpoint.CheckpointWriter;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.TensorInfo;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;

/**
 * {@code lowrank}: a fine-tune's delta written as a PEFT LoRA adapter of its base, as mergekit's extract_lora:
 * per 2-D tensor, the truncated SVD of Δ (Δᵀ for GPT-2's Conv1D weights, {@code fan_in_fan_out}) gives
 * B = U_r·√S_r and A = √S_r·V_rᵀ, with lora_alpha = r so PEFT's scaling is 1. The rank is the smallest of
 * {@code maxRank}, the count of singular values above {@code svEpsilon}, and (when {@code energy} > 0) the
 * smallest r with Σᵢ≤ᵣ sᵢ² ≥ energy·‖Δ‖²; ranks that differ from the most common one go to rank_pattern.
 * Changed tensors that are not low-ranked (1-D ones, and those {@code excluded}: embeddings and heads by
 * default) are saved whole: a changed bias of a LoRA module as PEFT's {@code bias: lora_only} saves it, any other
 * changed tensor's module in modules_to_save with all its tensors.
 *
 * <p>The SVD is randomized (Halko, Martinsson and Tropp): a seeded Gaussian sketch of maxRank + 8 columns, two
 * power iterations, and the exact SVD of the small projected matrix; a matrix whose smaller side is within twice
 * the sketch takes a full SVD. A delta of rank ≤ maxRank is recovered exactly (to float rounding).
 */
public final class DeltaLowRank {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int OVERSAMPLE = 8;
    private static final int POWER_ITERATIONS = 2;

    /** What to extract. */
    public record Spec(int maxRank, double svEpsilon, double energy, Pattern included, Pattern excluded) {
        public Spec {
            if (maxRank < 1) {
                throw new IllegalArgumentException("max_rank must be at least 1, got " + maxRank);
            }
            if (!(energy >= 0 && energy <= 1)) {
                throw new IllegalArgumentException("energy must be in [0, 1], got " + energy);
            }
        }

        public static Spec ofRank(int maxRank) {
            return new Spec(maxRank, 0, 0, Pattern.compile(""), DeltaEdit.EMBEDDINGS_AND_HEADS);
        }
    }

    /** One module's factors: A [r, in], B [out, r]. */
    public record Factors(String module, int rank, int in, int out, float[] a, float[] b) {
    }

    /** What was written: ranks per module, modules saved whole. */
    public record Result(Map<String, Integer> ranks, List<String> savedWhole) {
    }

    private final MergeOptions options;
    private final MergeExecutor.MergeListener listener;
    private final AtomicBoolean cancelled;

    public DeltaLowRank(MergeOptions options) {
        this(options, p -> { }, new AtomicBoolean());
    }

    /**
     * @param listener  told the tensors and input bytes done, as merges tell theirs
     * @param cancelled set to stop the extraction: it ends with a CancellationException before the next tensor,
     *                  leaving nothing behind
     */
    public DeltaLowRank(MergeOptions options, MergeExecutor.MergeListener listener, AtomicBoolean cancelled) {
        this.options = options;
        this.listener = listener;
        this.cancelled = cancelled;
    }

    public Result run(String baseRef, String fineTuneRef, Spec spec, Path outDir) throws IOException, RecipeException {
        StagedOutput.checkTarget(outDir);
        BlobCache cache = new BlobCache(options.cacheDir(), options.cacheBytes());
        try (InputModel base = InputModel.open(baseRef, options, cache);
             InputModel fineTune = InputModel.open(fineTuneRef, options, cache);
             StagedOutput output = new StagedOutput(outDir)) {
            boolean conv1d = isGpt2(fineTune);
            List<Factors> factors = new ArrayList<>();
            List<TensorInfo> changedElsewhere = new ArrayList<>();
            ProgressReporter progress = new ProgressReporter(listener, new WriteThrottle(options.maxBytesPerSecond(),
                    cancelled), fineTune.tensors().size(),
                    fineTune.tensors().stream().mapToLong(TensorInfo::byteLength).sum());
            for (TensorInfo t : fineTune.tensors()) {
                if (cancelled.get() || Thread.currentThread().isInterrupted()) {
                    throw new CancellationException("low-rank extraction cancelled");
                }
                progress.written(t.byteLength());
                progress.tensorDone();
                var inBase = base.tensor(t.name());
                if (inBase.isEmpty() || !Arrays.equals(inBase.get().shape(), t.shape()) || !Floats.supports(t.dtype())) {
                    throw new RecipeException("tensor '" + t.name() + "' of " + fineTuneRef + " is not in " + baseRef
                            + " with the same shape; a LoRA adapter only changes the base's tensors");
                }
                float[] delta = delta(base, fineTune, t);
                if (isZero(delta)) {
                    continue;
                }
                boolean lowRanked = t.rank() == 2 && t.name().endsWith(".weight") && spec.included().matcher(t.name()).find()
                        && (spec.excluded().pattern().isEmpty() || !spec.excluded().matcher(t.name()).find());
                if (!lowRanked) {
                    changedElsewhere.add(t);
                    continue;
                }
                int rows = (int) t.dim(0);
                int cols = (int) t.dim(1);
                // PEFT's ΔW = B·A for a Linear weight [out, in]; for a Conv1D weight [in, out], ΔW = (B·A)ᵀ
                Matrix m = conv1d ? new Matrix(rows, cols, delta).transpose() : new Matrix(rows, cols, delta);
                factors.add(factor(module(t.name()), m, spec, options.backend(), t.name()));
            }
            // A changed bias of a LoRA module is saved as PEFT's bias "lora_only" saves it; any other changed tensor's
            // module goes to modules_to_save, every tensor of that module saved whole, as PEFT saves such modules.
            java.util.Set<String> loraModules = new java.util.HashSet<>();
            factors.forEach(f -> loraModules.add(f.module()));
            java.util.Set<String> savedModules = new java.util.LinkedHashSet<>();
            List<TensorInfo> whole = new ArrayList<>();
            boolean loraBiases = false;
            for (TensorInfo t : changedElsewhere) {
                if (loraModules.contains(module(t.name())) && t.name().endsWith(".bias")) {
                    loraBiases = true;
                    whole.add(t);
                } else {
                    savedModules.add(module(t.name()));
                }
            }
            for (TensorInfo t : fineTune.tensors()) {
                if (savedModules.contains(module(t.name()))) {
                    whole.add(t);
                }
            }
            Files.createDirectories(output.dir());
            write(factors, whole, fineTune, output.dir());
            writeConfig(factors, savedModules, loraBiases, conv1d, baseRef, output.dir().resolve(AdapterConfig.FILE_NAME));
            Files.writeString(output.dir().resolve("README.md"), "# " + outDir.getFileName() + "\n\nA LoRA adapter of `"
                    + baseRef + "` extracted from `" + fineTuneRef + "` by modelmerge (truncated randomized SVD of each"
                    + " delta, max rank " + spec.maxRank() + ").\n");
            output.publish();
            progress.finished();
            Map<String, Integer> ranks = new LinkedHashMap<>();
            factors.forEach(f -> ranks.put(f.module(), f.rank()));
            return new Result(ranks, whole.stream().map(TensorInfo::name).toList());
        }
    }

    /** The module a tensor belongs to: its name without the last component ({@code weight}, {@code bias}). */
    private static String module(String tensor) {
        int dot = tensor.lastIndexOf('.');
        return dot < 0 ? tensor : tensor.substring(0, dot);
    }

    private static boolean isGpt2(InputModel model) throws IOException {
        for (var file : model.checkpoint().tagAlongFiles()) {
            if (file.fileName().equals("config.json")) {
                return JSON.readTree(model.checkpoint().store().readAllBytes(file.key())).path("model_type").asText()
                        .equals("gpt2");
            }
        }
        return false;
    }

    private float[] delta(InputModel base, InputModel fineTune, TensorInfo t) throws RecipeException {
        long n = t.elementCount();
        if (n * 8 > options.memoryBytes()) {
            throw new RecipeException("tensor '" + t.name() + "' (" + n + " elements) needs " + (n * 8 >> 20)
                    + " MiB to factor, over the memory budget of " + (options.memoryBytes() >> 20) + " MiB");
        }
        float[] b = new float[(int) n];
        float[] f = new float[(int) n];
        base.source(t.name()).read(0, (int) n, b);
        fineTune.source(t.name()).read(0, (int) n, f);
        for (int i = 0; i < f.length; i++) {
            f[i] -= b[i];
        }
        return f;
    }

    private static boolean isZero(float[] values) {
        for (float v : values) {
            if (v != 0) {
                return false;
            }
        }
        return true;
    }

    /** B = U_r·√S_r [out, r] and A = √S_r·V_rᵀ [r, in] of m [out, in]. */
    public static Factors factor(String module, Matrix m, Spec spec, ComputeBackend backend, String tensor) throws RecipeException {
        int out = m.rows();
        int in = m.columns();
        int smaller = Math.min(out, in);
        if (spec.maxRank() > smaller && spec.energy() == 0 && spec.svEpsilon() == 0) {
            throw new RecipeException("max_rank " + spec.maxRank() + " is larger than tensor '" + tensor + "' ("
                    + out + " x " + in + ") allows: at most " + smaller);
        }
        int sketch = Math.min(smaller, spec.maxRank() + OVERSAMPLE);
        ComputeBackend.SVD svd = sketch * 2 >= smaller ? backend.svd(m) : randomized(m, sketch, backend, module.hashCode());
        float[] s = svd.s();
        double total = 0;
        for (float v : m.values()) {
            total += (double) v * v;
        }
        int rank = Math.min(spec.maxRank(), s.length);
        if (spec.svEpsilon() > 0) {
            int above = 0;
            while (above < s.length && s[above] > spec.svEpsilon()) {
                above++;
            }
            rank = Math.min(rank, above);
        }
        if (spec.energy() > 0) {
            double kept = 0;
            int r = 0;
            while (r < s.length && kept < spec.energy() * total) {
                kept += (double) s[r] * s[r];
                r++;
            }
            rank = Math.min(rank, r);
        }
        rank = Math.max(rank, 1);
        float[] a = new float[rank * in];
        float[] b = new float[out * rank];
        for (int k = 0; k < rank; k++) {
            float root = (float) Math.sqrt(s[k]);
            for (int i = 0; i < in; i++) {
                a[k * in + i] = root * svd.vt().values()[k * in + i];
            }
            for (int o = 0; o < out; o++) {
                b[o * rank + k] = svd.u().values()[o * svd.u().columns() + k] * root;
            }
        }
        return new Factors(module, rank, in, out, a, b);
    }

    /** The top singular triplets of m through a seeded Gaussian sketch of {@code k} columns and power iterations. */
    private static ComputeBackend.SVD randomized(Matrix m, int k, ComputeBackend backend, long seed) {
        Random random = new Random(seed);
        float[] omega = new float[m.columns() * k];
        for (int i = 0; i < omega.length; i++) {
            omega[i] = (float) random.nextGaussian();
        }
        Matrix mt = m.transpose();
        Matrix q = backend.qr(backend.multiply(m, new Matrix(m.columns(), k, omega))).q();
        for (int p = 0; p < POWER_ITERATIONS; p++) {
            Matrix z = backend.qr(backend.multiply(mt, q)).q();
            q = backend.qr(backend.multiply(m, z)).q();
        }
        Matrix small = backend.multiply(q.transpose(), m); // k × in
        ComputeBackend.SVD inner = backend.svd(small);
        return new ComputeBackend.SVD(backend.multiply(q, inner.u()), inner.s(), inner.vt());
    }

    /** The factors, and the fine-tune's tensors saved whole, streamed in chunks of 1 Mi elements. */
    private static void write(List<Factors> factors, List<TensorInfo> whole, InputModel fineTune, Path dir)
            throws IOException {
        List<TensorSpec> specs = new ArrayList<>();
        for (Factors f : factors) {
            String prefix = Checkpoint.PEFT_PREFIX + f.module();
            specs.add(new TensorSpec(prefix + ".lora_A.weight", DType.F32, new long[] {f.rank(), f.in()}));
            specs.add(new TensorSpec(prefix + ".lora_B.weight", DType.F32, new long[] {f.out(), f.rank()}));
        }
        whole.forEach(t -> specs.add(new TensorSpec(Checkpoint.PEFT_PREFIX + t.name(), t.dtype(), t.shape())));
        try (CheckpointWriter writer = CheckpointWriter.create(dir, specs, Map.of("format", "pt"), Long.MAX_VALUE)) {
            for (Factors f : factors) {
                String prefix = Checkpoint.PEFT_PREFIX + f.module();
                writer.write(prefix + ".lora_A.weight", 0, floats(f.a(), DType.F32));
                writer.write(prefix + ".lora_B.weight", 0, floats(f.b(), DType.F32));
            }
            float[] chunk = new float[1 << 20];
            for (TensorInfo t : whole) {
                // through the model's source: a fine-tune read from a delta or an adapter gives its rebuilt values
                TensorSource source = fineTune.source(t.name());
                int bytes = t.dtype().bits() / 8;
                MemorySegment narrowed = MemorySegment.ofArray(new byte[chunk.length * bytes]);
                for (long from = 0; from < t.elementCount(); from += chunk.length) {
                    int length = (int) Math.min(chunk.length, t.elementCount() - from);
                    source.read(from, length, chunk);
                    Floats.narrow(chunk, length, narrowed, t.dtype(), 0);
                    writer.write(Checkpoint.PEFT_PREFIX + t.name(), from * bytes, narrowed.asSlice(0, (long) length * bytes));
                }
            }
            writer.commit();
        }
        Files.move(dir.resolve(Checkpoint.SINGLE_FILE), dir.resolve(Checkpoint.ADAPTER_WEIGHTS));
    }

    private static MemorySegment floats(float[] values, DType dtype) {
        MemorySegment data = MemorySegment.ofArray(new byte[values.length * (dtype.bits() / 8)]);
        Floats.narrow(values, values.length, data, dtype, 0);
        return data;
    }

    /** PEFT's adapter_config.json: r the most common rank, the others in rank_pattern; lora_alpha = r throughout. */
    private static void writeConfig(List<Factors> factors, java.util.Collection<String> savedModules, boolean loraBiases,
                                    boolean conv1d, String baseRef, Path file) throws IOException {
        Map<Integer, Integer> counts = new HashMap<>();
        factors.forEach(f -> counts.merge(f.rank(), 1, Integer::sum));
        int r = counts.entrySet().stream().max(Map.Entry.<Integer, Integer>comparingByValue()
                .thenComparing(Map.Entry.comparingByKey())).map(Map.Entry::getKey).orElse(8);
        ObjectNode config = JSON.createObjectNode();
        config.put("peft_type", "LORA");
        config.put("base_model_name_or_path", baseRef);
        config.put("r", r);
        config.put("lora_alpha", r);
        ObjectNode ranks = config.putObject("rank_pattern");
        ObjectNode alphas = config.putObject("alpha_pattern");
        ArrayNode targets = config.putArray("target_modules");
        for (Factors f : factors) {
            targets.add(f.module());
            if (f.rank() != r) {
                ranks.put(f.module(), f.rank());
                alphas.put(f.module(), f.rank());
            }
        }
        if (savedModules.isEmpty()) {
            config.putNull("modules_to_save");
        } else {
            ArrayNode saved = config.putArray("modules_to_save");
            savedModules.forEach(saved::add);
        }
        config.put("fan_in_fan_out", conv1d);
        config.put("bias", loraBiases ? "lora_only" : "none");
        config.put("lora_dropout", 0.0);
        config.put("use_rslora", false);
        config.put("use_dora", false);
        config.put("init_lora_weights", true);
        config.put("inference_mode", true);
        config.putNull("task_type");
        JSON.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), config);
    }
}
