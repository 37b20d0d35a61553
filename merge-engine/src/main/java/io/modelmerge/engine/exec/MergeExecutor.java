package io.modelmerge.engine.exec;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.method.AdapterMethod;
import io.modelmerge.engine.method.Block;
import io.modelmerge.engine.method.MergeMethod;
import io.modelmerge.engine.method.MergeMethods;
import io.modelmerge.engine.method.ModelWidePass;
import io.modelmerge.engine.method.RecipeMethod;
import io.modelmerge.engine.method.TensorMerge;
import io.modelmerge.engine.method.TensorParameters;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.storage.blob.BlobCache;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.checkpoint.CheckpointWriter;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * Runs a recipe: opens the inputs (headers only), plans every output tensor and checks the plan, then streams
 * tensor by tensor, block by block, on all worker threads: widen the inputs' block to F32, merge, narrow, write
 * at the block's place in the output shard. Work buffers are sized from the memory budget, so memory does not
 * grow with the model. The output is staged beside {@code OUT_DIR} and moved into place only when complete; a
 * failed or cancelled merge leaves nothing behind.
 */
public final class MergeExecutor {
    /** Largest block, in elements: four F32 work arrays of this size stay in a core's L2 cache. */
    static final int MAX_BLOCK = 1 << 17;
    private static final int MIN_BLOCK = TensorMerge.BLOCK_UNIT;
    private static final long FLUSH_EVERY = 256L << 20;

    private final MergeOptions options;
    private final MergeListener listener;
    private final AtomicBoolean cancelled;

    public MergeExecutor(MergeOptions options, MergeListener listener, AtomicBoolean cancelled) {
        this.options = options;
        this.listener = listener;
        this.cancelled = cancelled;
    }

    /** Progress reports, at most a few per second and one at the end. */
    @FunctionalInterface
    public interface MergeListener {
        void progress(MergeProgress progress);
    }

    /**
     * Every check a merge makes before it reads tensor data (method, parameters, inputs' headers, shapes, memory
     * budget), without reading any: what a service runs when it accepts a job. Returns the tensors planned.
     */
    public int validate(Recipe recipe) throws IOException, RecipeException {
        RecipeMethod named = MergeMethods.named(recipe.mergeMethod());
        if (named instanceof AdapterMethod adapters) {
            return AdapterMerge.validate(recipe, adapters, options);
        }
        MergeMethod method = (MergeMethod) named;
        List<InputModel> inputs = new ArrayList<>();
        try {
            for (String ref : recipe.modelRefs()) {
                inputs.add(InputModel.open(ref, options, null));   // no cache: nothing is mapped
            }
            List<PlannedTensor> plan = new MergePlanner(recipe, method, inputs, options.seed()).plan();
            method.modelWidePass(merged(plan)); // its refusals, before any data is read
            checkBudget(plan, inputs);
            return plan.size();
        } finally {
            for (InputModel input : inputs) {
                input.close();
            }
        }
    }

    public MergeResult run(Recipe recipe, Path outDir) throws IOException, RecipeException {
        long start = System.nanoTime();
        if (Files.exists(outDir) && (!Files.isDirectory(outDir) || !isEmpty(outDir))) {
            throw new RecipeException("output " + outDir + " already exists and is not an empty directory");
        }
        RecipeMethod named = MergeMethods.named(recipe.mergeMethod());
        if (named instanceof AdapterMethod adapters) {
            return AdapterMerge.run(recipe, adapters, outDir, options);
        }
        MergeMethod method = (MergeMethod) named;
        BlobCache cache = new BlobCache(options.cacheDir(), options.cacheBytes());
        List<InputModel> inputs = new ArrayList<>();
        try (StagedOutput output = new StagedOutput(outDir)) {
            Path staging = output.dir();
            for (String ref : recipe.modelRefs()) {
                inputs.add(InputModel.open(ref, options, cache));
            }
            MergePlanner planner = new MergePlanner(recipe, method, inputs, options.seed());
            List<PlannedTensor> plan = planner.plan();
            List<String> notes = new ArrayList<>();
            inputs.forEach(i -> notes.addAll(i.notes()));
            notes.addAll(planner.notes());
            checkBudget(plan, inputs);
            List<String> files;
            try {
                files = execute(method, plan, inputs, staging, !recipe.allowNonfinite());
            } catch (NonFiniteOutput e) {
                throw new RecipeException(e.getMessage());
            }
            Checkpoint first = inputs.getFirst().checkpoint();
            copyTagAlong(first, staging);
            if (!first.ignoredFiles().isEmpty()) {
                notes.add("files beside " + first.location() + " that no checkpoint layout defines were not copied: "
                        + String.join(", ", first.ignoredFiles()));
            }
            if (!recipe.slices().isEmpty()) {
                notes.addAll(LayerCount.update(staging.resolve("config.json"),
                        recipe.slices().stream().mapToInt(s -> s.sources().getFirst().layerCount()).sum()));
            }
            output.publish(recipe, notes);
            long bytes = plan.stream().mapToLong(t -> t.output().byteLength()).sum();
            return new MergeResult(outDir, files, plan.size(), bytes, Duration.ofNanos(System.nanoTime() - start), notes);
        } finally {
            for (InputModel input : inputs) {
                input.close();
            }
        }
    }

    private void checkBudget(List<PlannedTensor> plan, List<InputModel> inputs) throws RecipeException {
        long work = (long) options.threads() * workspaceBytes(bufferElements(plan), maxInputs(plan));
        for (PlannedTensor t : plan) {
            long held = work;
            for (PlannedTensor.Input in : allInputs(t)) {
                held += inputs.get(in.model()).materializedBytes(in.tensor());
            }
            if (held > options.memoryBytes()) {
                throw new RecipeException("tensor '" + t.name() + "' needs " + held + " bytes in memory (LoRA deltas"
                        + " applied in F32 plus work buffers), over the budget of " + options.memoryBytes());
            }
        }
    }

    private static List<PlannedTensor.Input> allInputs(PlannedTensor t) {
        List<PlannedTensor.Input> all = new ArrayList<>(t.models());
        t.base().ifPresent(all::add);
        return all;
    }

    private static int maxInputs(List<PlannedTensor> plan) {
        return plan.stream().mapToInt(t -> t.models().size() + 1).max().orElse(1);
    }

    /** Work buffers of one thread: an F32 array per input plus one for the output, and the narrowed output. */
    private static long workspaceBytes(int block, int inputs) {
        return (long) block * ((inputs + 1) * 4L + 4L);
    }

    private int blockElements(List<PlannedTensor> plan) {
        long perThread = options.memoryBytes() / 2 / options.threads();
        long fit = perThread / ((maxInputs(plan) + 1) * 4L + 4L) / TensorMerge.BLOCK_UNIT * TensorMerge.BLOCK_UNIT;
        return (int) Math.max(MIN_BLOCK, Math.min(MAX_BLOCK, fit));
    }

    /** The work buffers' length: a block, or a row where a row is longer (row-aligned methods need whole rows). */
    private int bufferElements(List<PlannedTensor> plan) {
        long longestRow = plan.stream().filter(t -> !t.copy()).mapToLong(t -> t.parameters().columns()).max().orElse(1);
        return (int) Math.max(blockElements(plan), longestRow);
    }

    /** The largest run of whole rows of {@code columns} elements that fits a block (at least one row). */
    private static int rowBlock(int block, long columns) {
        return (int) (Math.max(1, block / columns) * columns);
    }

    /** One worker's buffers, reused across blocks and tensors. */
    private static final class Workspace {
        final float[][] inputs;
        final float[] out;
        final MemorySegment narrowed;

        Workspace(int inputs, int block) {
            this.inputs = new float[inputs][block];
            this.out = new float[block];
            this.narrowed = Arena.ofAuto().allocate(block * 4L, 64);
        }
    }

    private List<String> execute(MergeMethod method, List<PlannedTensor> planned, List<InputModel> inputs, Path staging,
                                 boolean finiteOnly) throws IOException, RecipeException {
        int block = blockElements(planned);
        int buffer = bufferElements(planned);
        int width = maxInputs(planned);
        long totalBytes = planned.stream().mapToLong(t -> t.output().byteLength()).sum();
        AtomicLong bytesDone = new AtomicLong();
        WriteThrottle throttle = new WriteThrottle(options.maxBytesPerSecond(), cancelled);
        LongConsumer written = bytes -> {
            bytesDone.addAndGet(bytes);
            throttle.written(bytes);
        };
        AtomicInteger tensorsDone = new AtomicInteger();
        long start = System.nanoTime();
        AtomicLong lastReport = new AtomicLong();
        Runnable report = () -> {
            long now = System.nanoTime();
            long last = lastReport.get();
            if (now - last > 200_000_000L && lastReport.compareAndSet(last, now)) {
                listener.progress(new MergeProgress(tensorsDone.get(), planned.size(), bytesDone.get(), totalBytes,
                        Duration.ofNanos(now - start)));
            }
        };
        ThreadLocal<Workspace> workspaces = ThreadLocal.withInitial(() -> new Workspace(width, buffer));
        ForkJoinPool pool = new ForkJoinPool(options.threads());
        // Write-back runs beside the merge: every FLUSH_EVERY bytes, one background flush, so the disk works
        // while the CPUs merge and commit's final sync has little left to do.
        ExecutorService flusher = Executors.newSingleThreadExecutor(Thread.ofPlatform().daemon().factory());
        Future<?> flushing = CompletableFuture.completedFuture(null);
        long flushedAt = 0;
        try {
            List<PlannedTensor> plan = withModelWidePass(method, planned, inputs, pool, block, workspaces);
            List<TensorSpec> specs = plan.stream().map(PlannedTensor::output).toList();
            Files.createDirectories(staging);
            try (CheckpointWriter writer = CheckpointWriter.create(staging, specs, Map.of("format", "pt"), options.outShardSize())) {
                List<PlannedTensor> small = new ArrayList<>();
                for (int index = 0; index <= plan.size(); index++) {
                    PlannedTensor tensor = index < plan.size() ? plan.get(index) : null;
                    // Tensors of one block (norms, biases, copies) gather into a batch merged a tensor per thread;
                    // larger ones spread their blocks over all threads.
                    if (tensor != null && (tensor.copy() || tensor.elements() <= block)) {
                        small.add(tensor);
                        continue;
                    }
                    if (!small.isEmpty()) {
                        List<PlannedTensor> batch = List.copyOf(small);
                        small.clear();
                        run(pool, () -> batch.parallelStream().forEach(t -> {
                            checkCancelled();
                            try {
                                mergeSmall(method, t, inputs, writer, block, workspaces, finiteOnly);
                            } catch (IOException e) {
                                throw new UncheckedIOException(e);
                            }
                            written.accept(t.output().byteLength());
                            tensorsDone.incrementAndGet();
                            report.run();
                        }));
                    }
                    if (tensor == null) {
                        break;
                    }
                    checkCancelled();
                    if (bytesDone.get() - flushedAt > FLUSH_EVERY && flushing.isDone()) {
                        flushedAt = bytesDone.get();
                        flushing = flusher.submit(() -> {
                            writer.flush();
                            return null;
                        });
                    }
                    mergeTensor(method.forTensor(tensor.parameters()), tensor, inputs, writer, pool, block, workspaces,
                            written, report, finiteOnly);
                    tensorsDone.incrementAndGet();
                    report.run();
                }
                waitFor(flushing);
                writer.commit();
                List<String> files = new ArrayList<>(writer.fileNames());
                if (writer.sharded()) {
                    files.add(io.modelmerge.storage.checkpoint.ShardIndex.FILE_NAME);
                }
                listener.progress(new MergeProgress(plan.size(), plan.size(), totalBytes, totalBytes,
                        Duration.ofNanos(System.nanoTime() - start)));
                return files;
            }
        } finally {
            pool.shutdownNow();
            flusher.shutdownNow();
        }
    }

    private static void waitFor(Future<?> flushing) throws IOException {
        try {
            flushing.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CancellationException("merge interrupted");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
        }
    }

    /** The merged tensors' parameters, for a method's model-wide pass to choose from. */
    private static List<TensorParameters> merged(List<PlannedTensor> plan) {
        return plan.stream().filter(t -> !t.copy()).map(PlannedTensor::parameters).toList();
    }

    /**
     * Runs the method's model-wide pass, if it has one, over the blocks of every tensor that reads it (ordered
     * passes in tensor and block order through one accumulator; others split over the workers, their
     * accumulators combined in tensor and range order), and gives those tensors the result.
     */
    private List<PlannedTensor> withModelWidePass(MergeMethod method, List<PlannedTensor> plan, List<InputModel> inputs,
                                                  ForkJoinPool pool, int block, ThreadLocal<Workspace> workspaces)
            throws IOException, RecipeException {
        Optional<ModelWidePass> found = method.modelWidePass(merged(plan));
        if (found.isEmpty()) {
            return plan;
        }
        ModelWidePass pass = found.get();
        java.util.function.Predicate<PlannedTensor> reads = t -> !t.copy() && pass.reads(t.parameters());
        List<PlannedTensor> reading = plan.stream().filter(reads).toList();
        for (int p = 0; p < pass.passes(); p++) {
            List<TensorMerge.Accumulator> parts = new ArrayList<>();
            if (pass.ordered()) {
                TensorMerge.Accumulator accumulator = pass.accumulator(p);
                Workspace ws = workspaces.get();
                for (PlannedTensor t : reading) {
                    Sources sources = Sources.of(t, inputs);
                    for (int b = 0; b < blockCount(t.elements(), block); b++) {
                        checkCancelled();
                        accumulator.add(sources.load(b, block, t.elements(), ws));
                    }
                }
                parts.add(accumulator);
            } else {
                for (PlannedTensor t : reading) {
                    checkCancelled();
                    Sources sources = Sources.of(t, inputs);
                    int blocks = blockCount(t.elements(), block);
                    int ranges = Math.min(options.threads(), Math.max(1, blocks));
                    List<TensorMerge.Accumulator> own = new ArrayList<>();
                    for (int r = 0; r < ranges; r++) {
                        own.add(pass.accumulator(p));
                    }
                    run(pool, () -> IntStream.range(0, ranges).parallel().forEach(r -> {
                        Workspace ws = workspaces.get();
                        for (int b = (int) ((long) blocks * r / ranges); b < (long) blocks * (r + 1) / ranges; b++) {
                            own.get(r).add(sources.load(b, block, t.elements(), ws));
                        }
                    }));
                    parts.addAll(own);
                }
            }
            pass.endPass(p, parts);
        }
        return plan.stream().map(t -> reads.test(t) ? t.withParameters(pass.apply(t.parameters())) : t).toList();
    }

    private static int blockCount(long elements, int block) {
        return (int) ((elements + block - 1) / block);
    }

    /** A tensor of at most one block, copied or merged entirely in the calling thread. */
    private void mergeSmall(MergeMethod method, PlannedTensor tensor, List<InputModel> inputs, CheckpointWriter writer,
                            int block, ThreadLocal<Workspace> workspaces, boolean finiteOnly) throws IOException {
        if (tensor.copy()) {
            PlannedTensor.Input from = tensor.models().getFirst();
            // copied tensors are integer buffers (floats are always merged): nothing to check
            writer.write(tensor.name(), 0, inputs.get(from.model()).rawTensor(from.tensor()).data());
            return;
        }
        TensorMerge merge = method.forTensor(tensor.parameters());
        Sources sources = Sources.of(tensor, inputs);
        Workspace ws = workspaces.get();
        for (int pass = 0; pass < merge.passes(); pass++) {
            TensorMerge.Accumulator accumulator = merge.accumulator(pass);
            accumulator.add(sources.load(0, block, tensor.elements(), ws));
            merge.endPass(pass, List.of(accumulator));
        }
        mergeBlock(merge, tensor, sources, 0, block, writer, ws, finiteOnly);
    }

    /**
     * Merges block {@code b} of {@code tensor} and writes it to its place in the output; returns its bytes. With
     * {@code finiteOnly} a NaN or infinite result fails the merge before the block is written.
     */
    private static long mergeBlock(TensorMerge merge, PlannedTensor tensor, Sources sources, int b, int block,
                                   CheckpointWriter writer, Workspace ws, boolean finiteOnly) throws IOException {
        Block data = sources.load(b, block, tensor.elements(), ws);
        merge.merge(data, ws.out);
        if (finiteOnly) {
            NonFiniteOutput.check(tensor.name(), data.offset(), ws.out, data.length(), tensor.output().dtype());
        }
        int elementBytes = tensor.output().dtype().bits() / 8;
        Floats.narrow(ws.out, data.length(), ws.narrowed, tensor.output().dtype(), 0);
        long bytes = (long) data.length() * elementBytes;
        writer.write(tensor.name(), data.offset() * elementBytes, ws.narrowed.asSlice(0, bytes));
        return bytes;
    }

    private void mergeTensor(TensorMerge merge, PlannedTensor tensor, List<InputModel> inputs, CheckpointWriter writer,
                             ForkJoinPool pool, int anyBlock, ThreadLocal<Workspace> workspaces, LongConsumer written,
                             Runnable report, boolean finiteOnly) throws IOException {
        int block = merge.rowAligned() ? rowBlock(anyBlock, tensor.parameters().columns()) : anyBlock;
        Sources sources = Sources.of(tensor, inputs);
        long elements = tensor.elements();
        int blocks = (int) ((elements + block - 1) / block);
        for (int pass = 0; pass < merge.passes(); pass++) {
            int thisPass = pass;
            int ranges = merge.orderedPasses() ? 1 : Math.min(options.threads(), Math.max(1, blocks));
            List<TensorMerge.Accumulator> accumulators = new ArrayList<>();
            for (int r = 0; r < ranges; r++) {
                accumulators.add(merge.accumulator(thisPass));
            }
            int stride = merge.stride(thisPass);
            run(pool, () -> IntStream.range(0, ranges).parallel().forEach(r -> {
                Workspace ws = workspaces.get();
                for (int b = (int) ((long) blocks * r / ranges); b < (long) blocks * (r + 1) / ranges; b++) {
                    checkCancelled();
                    if (b % stride == 0) {
                        accumulators.get(r).add(sources.load(b, block, elements, ws));
                    }
                }
            }));
            merge.endPass(thisPass, accumulators);
        }
        run(pool, () -> IntStream.range(0, blocks).parallel().forEach(b -> {
            checkCancelled();
            try {
                written.accept(mergeBlock(merge, tensor, sources, b, block, writer, workspaces.get(), finiteOnly));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            report.run();
        }));
    }

    /** A planned tensor's inputs, opened: the base's tensor (null without a base) and each model's. */
    private record Sources(TensorSource base, List<TensorSource> models) {
        static Sources of(PlannedTensor tensor, List<InputModel> inputs) {
            TensorSource base = tensor.base().map(in -> inputs.get(in.model()).source(in.tensor())).orElse(null);
            List<TensorSource> models = new ArrayList<>();
            for (PlannedTensor.Input in : tensor.models()) {
                models.add(inputs.get(in.model()).source(in.tensor()));
            }
            return new Sources(base, models);
        }

        /** Reads block {@code b} of every input into the worker's buffers, widened to F32. */
        Block load(int b, int block, long elements, Workspace ws) {
            long offset = (long) b * block;
            int length = (int) Math.min(block, elements - offset);
            float[] baseValues = null;
            if (base != null) {
                baseValues = ws.inputs[models.size()];
                base.read(offset, length, baseValues);
            }
            float[][] values = new float[models.size()][];
            for (int m = 0; m < models.size(); m++) {
                values[m] = ws.inputs[m];
                models.get(m).read(offset, length, values[m]);
            }
            return new Block(offset, length, baseValues, values);
        }
    }

    private void checkCancelled() {
        if (cancelled.get() || Thread.currentThread().isInterrupted()) {
            throw new CancellationException("merge cancelled");
        }
    }

    private static void run(ForkJoinPool pool, Runnable work) throws IOException {
        Future<?> future = pool.submit(work);
        try {
            future.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CancellationException("merge interrupted");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof UncheckedIOException io) {
                throw io.getCause();
            }
            if (cause instanceof RuntimeException runtime) {
                throw runtime;
            }
            throw new IOException(cause);
        }
    }

    private static void copyTagAlong(Checkpoint source, Path dir) throws IOException {
        for (var file : source.tagAlongFiles()) {
            String name = file.fileName();
            if (name.equals("README.md") || name.equals("merge_recipe.yml") || name.startsWith(".")) {
                continue; // the merge writes its own card and recipe
            }
            try (var in = source.store().read(file.key())) {
                Files.copy(in, dir.resolve(name), StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }

    private static boolean isEmpty(Path dir) throws IOException {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.findAny().isEmpty();
        }
    }
}
