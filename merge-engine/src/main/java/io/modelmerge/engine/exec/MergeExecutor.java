package io.modelmerge.engine.exec;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.method.AdapterMethod;
import io.modelmerge.engine.method.Block;
import io.modelmerge.engine.method.DeltaMethod;
import io.modelmerge.engine.method.MergeMethod;
import io.modelmerge.engine.method.MergeMethods;
import io.modelmerge.engine.method.ModelWidePass;
import io.modelmerge.engine.method.Pass;
import io.modelmerge.engine.method.RecipeMethod;
import io.modelmerge.engine.method.TensorMerge;
import io.modelmerge.engine.method.TensorParameters;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.storage.blob.BlobCache;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;
import java.util.stream.IntStream;

/**
 * Runs a recipe: opens the inputs (headers only), plans every output tensor and checks the plan, then streams
 * tensor by tensor, block by block, on all worker threads: widen the inputs' block to F32, merge, narrow, write
 * at the block's place in the output shard. Work buffers are sized from the memory budget, so memory does not
 * grow with the model. The output is staged beside {@code OUT_DIR} and moved into place only when complete; a
 * failed or cancelled merge leaves nothing behind.
 */
public final class MergeExecutor {
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
        if (named instanceof DeltaMethod delta) {
            return DeltaRecipes.validate(recipe, delta, options);
        }
        MergeMethod method = (MergeMethod) named;
        if (recipe.chatTemplate().isPresent()) {
            ChatTemplate.check(recipe.chatTemplate().get());
        }
        List<InputModel> inputs = new ArrayList<>();
        try {
            for (String ref : recipe.modelRefs()) {
                inputs.add(InputModel.open(ref, options, null));   // no cache: nothing is mapped
            }
            List<PlannedTensor> plan = new MergePlanner(recipe, method, inputs, options.seed(), options.strict()).plan();
            TokenizerSource.of(recipe, inputs);
            method.modelWidePass(merged(plan)); // its refusals, before any data is read
            BlockBudget.of(plan, options).check(plan, inputs, options);
            return plan.size();
        } finally {
            for (InputModel input : inputs) {
                input.close();
            }
        }
    }

    public MergeResult run(Recipe recipe, Path outDir) throws IOException, RecipeException {
        long start = System.nanoTime();
        StagedOutput.checkTarget(outDir);
        RecipeMethod named = MergeMethods.named(recipe.mergeMethod());
        if (named instanceof AdapterMethod adapters) {
            return AdapterMerge.run(recipe, adapters, outDir, options);
        }
        if (named instanceof DeltaMethod delta) {
            return DeltaRecipes.run(recipe, delta, outDir, options, listener, cancelled);
        }
        MergeMethod method = (MergeMethod) named;
        if (recipe.chatTemplate().isPresent()) {
            ChatTemplate.check(recipe.chatTemplate().get());
        }
        BlobCache cache = new BlobCache(options.cacheDir(), options.cacheBytes());
        List<InputModel> inputs = new ArrayList<>();
        try (StagedOutput output = new StagedOutput(outDir)) {
            Path staging = output.dir();
            for (String ref : recipe.modelRefs()) {
                inputs.add(InputModel.open(ref, options, cache));
            }
            MergePlanner planner = new MergePlanner(recipe, method, inputs, options.seed(), options.strict());
            List<PlannedTensor> plan = planner.plan();
            Optional<InputModel> tokenizer = TokenizerSource.of(recipe, inputs);
            List<String> notes = new ArrayList<>();
            inputs.forEach(i -> notes.addAll(i.notes()));
            notes.addAll(planner.notes());
            BlockBudget budget = BlockBudget.of(plan, options);
            budget.check(plan, inputs, options);
            List<String> files;
            try {
                files = execute(method, plan, inputs, budget, staging, !recipe.allowNonfinite());
            } catch (NonFiniteOutput e) {
                throw new RecipeException(e.getMessage());
            }
            Checkpoint first = inputs.getFirst().checkpoint();
            copyTagAlong(first, staging);
            if (tokenizer.isPresent()) {
                TokenizerSource.copy(tokenizer.get(), staging);
            }
            if (recipe.chatTemplate().isPresent()) {
                notes.addAll(ChatTemplate.apply(recipe.chatTemplate().get(), inputs, staging));
            }
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

    private List<String> execute(MergeMethod method, List<PlannedTensor> planned, List<InputModel> inputs,
                                 BlockBudget budget, Path staging, boolean finiteOnly) throws IOException, RecipeException {
        int block = budget.block();
        long totalBytes = planned.stream().mapToLong(t -> t.output().byteLength()).sum();
        ProgressReporter progress = new ProgressReporter(listener,
                new WriteThrottle(options.maxBytesPerSecond(), cancelled), planned.size(), totalBytes);
        ThreadLocal<Workspace> workspaces = ThreadLocal.withInitial(() -> new Workspace(budget.width(), budget.buffer()));
        ForkJoinPool pool = new ForkJoinPool(options.threads());
        try {
            List<PlannedTensor> plan = withModelWidePass(method, planned, inputs, pool, block, workspaces);
            List<TensorSpec> specs = plan.stream().map(PlannedTensor::output).toList();
            try (OutputWriter output = new OutputWriter(staging, specs, options.outShardSize())) {
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
                                mergeSmall(method, t, inputs, output, block, workspaces, finiteOnly);
                            } catch (IOException e) {
                                throw new UncheckedIOException(e);
                            }
                            progress.written(t.output().byteLength());
                            progress.tensorDone();
                        }));
                    }
                    if (tensor == null) {
                        break;
                    }
                    checkCancelled();
                    output.flushBehind(progress.bytesDone());
                    mergeTensor(method.forTensor(tensor.parameters()), tensor, inputs, output, pool, budget, workspaces,
                            progress, finiteOnly);
                    progress.tensorDone();
                }
                List<String> files = output.commit();
                progress.finished();
                return files;
            }
        } finally {
            pool.shutdownNow();
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
        ModelWidePass statistic = found.get();
        java.util.function.Predicate<PlannedTensor> reads = t -> !t.copy() && statistic.reads(t.parameters());
        List<PlannedTensor> reading = plan.stream().filter(reads).toList();
        for (Optional<Pass<?>> pass = statistic.nextPass(); pass.isPresent(); pass = statistic.nextPass()) {
            runOverModel(pass.get(), reading, inputs, pool, block, workspaces);
        }
        return plan.stream().map(t -> reads.test(t) ? t.withParameters(statistic.apply(t.parameters())) : t).toList();
    }

    private <A extends TensorMerge.Accumulator> void runOverModel(Pass<A> pass, List<PlannedTensor> reading,
                                                                  List<InputModel> inputs, ForkJoinPool pool, int block,
                                                                  ThreadLocal<Workspace> workspaces) throws IOException {
        List<A> parts = pass.ordered() ? TensorPasses.accumulators(pass, 1) : new ArrayList<>();
        for (PlannedTensor t : reading) {
            Sources sources = Sources.of(t, inputs);
            int blocks = BlockBudget.count(t.elements(), block);
            List<A> own = pass.ordered() ? parts
                    : TensorPasses.accumulators(pass, TensorPasses.ranges(blocks, options.threads()));
            TensorPasses.feed(own, blocks, pass.stride(), b -> {
                checkCancelled();
                return sources.load(b, block, t.elements(), workspaces.get(), pass.inputs());
            }, pass.ordered() ? TensorPasses.Ranges.sequential() : parallel(pool));
            if (!pass.ordered()) {
                parts.addAll(own);
            }
        }
        pass.end().accept(parts);
    }

    /** A tensor of at most one block, copied or merged entirely in the calling thread. */
    private void mergeSmall(MergeMethod method, PlannedTensor tensor, List<InputModel> inputs, OutputWriter output,
                            int block, ThreadLocal<Workspace> workspaces, boolean finiteOnly) throws IOException {
        if (tensor.copy()) {
            PlannedTensor.Input from = tensor.models().getFirst();
            // copied tensors are integer buffers (floats are always merged): nothing to check
            output.write(tensor.name(), 0, inputs.get(from.model()).rawTensor(from.tensor()).data());
            return;
        }
        TensorMerge merge = method.forTensor(tensor.parameters());
        Sources sources = Sources.of(tensor, inputs);
        Workspace ws = workspaces.get();
        TensorPasses.run(merge, 1, 1, (b, only) -> sources.load(b, block, tensor.elements(), ws, only),
                TensorPasses.Ranges.sequential());
        mergeBlock(merge, tensor, sources, 0, block, output, ws, finiteOnly);
    }

    /**
     * Merges block {@code b} of {@code tensor} and writes it to its place in the output; returns its bytes. With
     * {@code finiteOnly} a NaN or infinite result fails the merge before the block is written.
     */
    private static long mergeBlock(TensorMerge merge, PlannedTensor tensor, Sources sources, int b, int block,
                                   OutputWriter output, Workspace ws, boolean finiteOnly) throws IOException {
        Block data = sources.load(b, block, tensor.elements(), ws);
        merge.merge(data, ws.out);
        if (finiteOnly) {
            NonFiniteOutput.check(tensor.name(), data.offset(), ws.out, data.length(), tensor.output().dtype());
        }
        int elementBytes = tensor.output().dtype().bits() / 8;
        Floats.narrow(ws.out, data.length(), ws.narrowed, tensor.output().dtype(), 0);
        long bytes = (long) data.length() * elementBytes;
        output.write(tensor.name(), data.offset() * elementBytes, ws.narrowed.asSlice(0, bytes));
        return bytes;
    }

    /** A tensor of several blocks: its passes, then its blocks, spread over every worker. */
    private void mergeTensor(TensorMerge merge, PlannedTensor tensor, List<InputModel> inputs, OutputWriter output,
                             ForkJoinPool pool, BlockBudget budget, ThreadLocal<Workspace> workspaces,
                             ProgressReporter progress, boolean finiteOnly) throws IOException {
        int block = merge.rowAligned() ? budget.rowBlock(tensor.parameters().columns()) : budget.block();
        Sources sources = Sources.of(tensor, inputs);
        long elements = tensor.elements();
        int blocks = BlockBudget.count(elements, block);
        TensorPasses.run(merge, blocks, options.threads(), (b, only) -> {
            checkCancelled();
            return sources.load(b, block, elements, workspaces.get(), only);
        }, parallel(pool));
        run(pool, () -> IntStream.range(0, blocks).parallel().forEach(b -> {
            checkCancelled();
            try {
                progress.written(mergeBlock(merge, tensor, sources, b, block, output, workspaces.get(), finiteOnly));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }));
    }

    /** Range tasks on the merge's workers. */
    private static TensorPasses.Ranges parallel(ForkJoinPool pool) {
        return (ranges, range) -> run(pool, () -> IntStream.range(0, ranges).parallel().forEach(range));
    }

    private void checkCancelled() {
        if (cancelled.get() || Thread.currentThread().isInterrupted()) {
            throw new CancellationException("merge cancelled");
        }
    }

    private static void run(ForkJoinPool pool, Runnable work) throws IOException {
        await(pool.submit(work));
    }

    /** The result of {@code future}, its failure rethrown as the I/O or runtime exception it was. */
    static <T> T await(Future<T> future) throws IOException {
        try {
            return future.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CancellationException("merge interrupted");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof UncheckedIOException io) {
                throw io.getCause();
            }
            if (cause instanceof IOException io) {
                throw io;
            }
            if (cause instanceof RuntimeException runtime) {
                throw runtime;
            }
            throw new IOException(cause);
        }
    }

    private static void copyTagAlong(Checkpoint source, Path dir) throws IOException {
        // the merge writes its own card and recipe
        copyTagAlong(source, dir, name -> !name.equals("README.md") && !name.equals("merge_recipe.yml")
                && !name.startsWith("."));
    }

    /** Copies the tag-along files of {@code source} whose names {@code copied} accepts into {@code dir}. */
    static void copyTagAlong(Checkpoint source, Path dir, Predicate<String> copied)
            throws IOException {
        for (var file : source.tagAlongFiles()) {
            String name = file.fileName();
            if (!copied.test(name)) {
                continue;
            }
            try (var in = source.store().read(file.key())) {
                Files.copy(in, dir.resolve(name), StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }
}
