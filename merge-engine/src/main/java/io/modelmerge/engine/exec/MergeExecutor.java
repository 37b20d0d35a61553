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
import io.modelmerge.engine.method.SearchMethod;
import io.modelmerge.engine.method.TensorMerge;
import io.modelmerge.engine.method.TensorParameters;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.storage.blob.BlobCache;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.checkpoint.CheckpointWriter;
import io.modelmerge.storage.checkpoint.ShardIndex;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
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
        if (named instanceof SearchMethod search) {
            throw runsWithAnEvaluator(search);
        }
        try (Opened merge = open(recipe, null)) {   // no cache: nothing is mapped
            merge.method().modelWidePass(merged(merge.plan())); // its refusals, before any data is read
            return merge.plan().size();
        }
    }

    /** A search is not one merge: {@code SearchRecipes} runs it, with an evaluator. */
    private static RecipeException runsWithAnEvaluator(SearchMethod search) {
        return new RecipeException(search.name() + " scores candidates with an evaluator, so it runs where evaluators"
                + " are registered: submit it to the merge service (mergectl submit)");
    }

    /** The content digest of model {@code ref} (an adapter's included), as the registry records it for a version. */
    public String contentDigest(String ref) throws IOException, RecipeException {
        try (InputModel model = InputModel.open(ref, options, null)) {
            return model.contentDigest();
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
        if (named instanceof SearchMethod search) {
            throw runsWithAnEvaluator(search);
        }
        try (Opened merge = open(recipe, new BlobCache(options.cacheDir(), options.cacheBytes()));
             StagedOutput output = new StagedOutput(outDir)) {
            List<String> files = execute(merge, output.dir(), Optional.empty(), OptionalInt.empty());
            List<String> notes = finish(merge, output.dir());
            output.publish(recipe, notes);
            return new MergeResult(outDir, files, merge.plan().size(), merge.bytes(),
                    Duration.ofNanos(System.nanoTime() - start), notes);
        }
    }

    /**
     * A merge opened for work: its inputs (headers read, data mapped on demand), its checked plan and budget, and
     * the notes so far. Closing closes the inputs.
     */
    private record Opened(Recipe recipe, MergeMethod method, List<InputModel> inputs, List<PlannedTensor> plan,
                          BlockBudget budget, Optional<InputModel> tokenizer, List<String> notes)
            implements AutoCloseable {
        long bytes() {
            return plan.stream().mapToLong(t -> t.output().byteLength()).sum();
        }

        List<TensorSpec> specs() {
            return plan.stream().map(PlannedTensor::output).toList();
        }

        @Override
        public void close() throws IOException {
            MergeExecutor.close(inputs);
        }
    }

    private static void close(List<InputModel> inputs) throws IOException {
        for (InputModel input : inputs) {
            input.close();
        }
    }

    /** Opens a merge recipe's inputs and plans it, with every check a merge makes before reading data. */
    private Opened open(Recipe recipe, BlobCache cache) throws IOException, RecipeException {
        if (!(MergeMethods.named(recipe.mergeMethod()) instanceof MergeMethod method)) {
            throw new RecipeException("merge_method " + recipe.mergeMethod() + " is not a merge of full checkpoints:"
                    + " it runs whole, on one worker");
        }
        if (recipe.chatTemplate().isPresent()) {
            ChatTemplate.check(recipe.chatTemplate().get());
        }
        List<InputModel> inputs = new ArrayList<>();
        try {
            for (String ref : recipe.modelRefs()) {
                inputs.add(InputModel.open(ref, options, cache));
            }
            // methods add notes while they merge (MergeMethod.NOTES), from any worker
            List<String> notes = Collections.synchronizedList(new ArrayList<>());
            inputs.forEach(i -> notes.addAll(i.notes()));
            MergePlanner planner = new MergePlanner(recipe, method, inputs, options.seed(), options.strict(), notes);
            List<PlannedTensor> plan = planner.plan();
            Optional<InputModel> tokenizer = TokenizerSource.of(recipe, inputs);
            BlockBudget budget = BlockBudget.of(plan, options);
            budget.check(plan, inputs, method, options);
            return new Opened(recipe, method, inputs, plan, budget, tokenizer, notes);
        } catch (IOException | RecipeException | RuntimeException e) {
            close(inputs);
            throw e;
        }
    }

    /** Everything of the output but its tensors, into {@code dir}: tag-alongs, tokenizer, chat template; the notes. */
    private static List<String> finish(Opened merge, Path dir) throws IOException, RecipeException {
        Recipe recipe = merge.recipe();
        List<String> notes = new ArrayList<>(merge.notes());
        Checkpoint first = merge.inputs().getFirst().checkpoint();
        copyTagAlong(first, dir);
        if (merge.tokenizer().isPresent()) {
            TokenizerSource.copy(merge.tokenizer().get(), dir);
        }
        if (recipe.chatTemplate().isPresent()) {
            notes.addAll(ChatTemplate.apply(recipe.chatTemplate().get(), merge.inputs(), dir));
        }
        if (!first.ignoredFiles().isEmpty()) {
            notes.add("files beside " + first.location() + " that no checkpoint layout defines were not copied: "
                    + String.join(", ", first.ignoredFiles()));
        }
        if (!recipe.slices().isEmpty()) {
            notes.addAll(LayerCount.update(dir.resolve("config.json"),
                    recipe.slices().stream().mapToInt(s -> s.sources().getFirst().layerCount()).sum()));
        }
        return notes;
    }

    /**
     * How a merge splits over workers ({@link #mergeShard}, then {@link #commitSplit}): the output's shards, as
     * the whole merge writes them, and whether a model-wide statistic must be computed first
     * ({@link #statistics}). Reads headers only.
     */
    public SplitPlan planSplit(Recipe recipe) throws IOException, RecipeException {
        try (Opened merge = open(recipe, null)) {
            List<List<TensorSpec>> tensors = CheckpointWriter.shards(merge.specs(), options.outShardSize());
            List<String> names = CheckpointWriter.shardNames(tensors.size());
            List<SplitPlan.Shard> shards = new ArrayList<>();
            for (int i = 0; i < tensors.size(); i++) {
                List<TensorSpec> shard = tensors.get(i);
                shards.add(new SplitPlan.Shard(i, names.get(i), shard.stream().map(TensorSpec::name).toList(),
                        shard.stream().mapToLong(TensorSpec::byteLength).sum()));
            }
            boolean modelWide = merge.method().modelWidePass(merged(merge.plan())).isPresent();
            return new SplitPlan(shards, modelWide, merge.bytes());
        }
    }

    /**
     * The model-wide statistic a split merge's shards share (thresholds, norms), computed once over every tensor
     * that reads it; empty when the method needs none.
     */
    public Optional<double[]> statistics(Recipe recipe) throws IOException, RecipeException {
        try (Opened merge = open(recipe, new BlobCache(options.cacheDir(), options.cacheBytes()))) {
            Optional<ModelWidePass> pass = merge.method().modelWidePass(merged(merge.plan()));
            if (pass.isEmpty()) {
                return Optional.empty();
            }
            ForkJoinPool pool = new ForkJoinPool(options.threads());
            try {
                runModelWidePass(pass.get(), merge, pool, Workspace.perThread(merge.budget()));
            } finally {
                pool.shutdownNow();
            }
            return Optional.of(pass.get().result());
        }
    }

    /**
     * Merges shard {@code shard} of a split merge into {@code dir} (created if need be) under its file name, the
     * same bytes the whole merge writes there; {@code statistics} is {@link #statistics}'s result where the plan
     * needs one. The file appears only when complete. Returns its name.
     */
    public String mergeShard(Recipe recipe, Optional<double[]> statistics, int shard, Path dir)
            throws IOException, RecipeException {
        try (Opened merge = open(recipe, new BlobCache(options.cacheDir(), options.cacheBytes()))) {
            Files.createDirectories(dir);
            return execute(merge, dir, statistics, OptionalInt.of(shard)).getFirst();
        }
    }

    /**
     * Writes everything of a split merge's output but its shards into the new directory {@code outDir}: the
     * shard index (when there are several), tag-alongs, tokenizer, chat template, recipe and model card, the
     * same bytes the whole merge writes. Reads headers only.
     */
    public MergeResult commitSplit(Recipe recipe, Path outDir) throws IOException, RecipeException {
        long start = System.nanoTime();
        StagedOutput.checkTarget(outDir);
        try (Opened merge = open(recipe, null); StagedOutput output = new StagedOutput(outDir)) {
            Files.createDirectories(output.dir());
            List<TensorSpec> specs = merge.specs();
            List<String> files = new ArrayList<>(CheckpointWriter.shardNames(
                    CheckpointWriter.shards(specs, options.outShardSize()).size()));
            if (files.size() > 1) {
                CheckpointWriter.writeIndex(output.dir(), CheckpointWriter.index(specs, options.outShardSize()));
                files.add(ShardIndex.FILE_NAME);
            }
            List<String> notes = finish(merge, output.dir());
            output.publish(recipe, notes);
            return new MergeResult(outDir, files, merge.plan().size(), merge.bytes(),
                    Duration.ofNanos(System.nanoTime() - start), notes);
        }
    }

    /**
     * Merges the planned tensors into {@code staging} (all of them, or those of one shard), running the model-wide
     * pass first where the method has one (or taking its {@code statistics}); returns the files written.
     */
    private List<String> execute(Opened merge, Path staging, Optional<double[]> statistics, OptionalInt shard)
            throws IOException, RecipeException {
        BlockBudget budget = merge.budget();
        int block = budget.block();
        ThreadLocal<Workspace> workspaces = Workspace.perThread(budget);
        ForkJoinPool pool = new ForkJoinPool(options.threads());
        boolean finiteOnly = !merge.recipe().allowNonfinite();
        try {
            List<PlannedTensor> plan = withModelWidePass(merge, pool, workspaces, statistics);
            List<TensorSpec> specs = merge.specs();
            if (shard.isPresent()) {
                java.util.Set<TensorSpec> own = new java.util.HashSet<>(
                        CheckpointWriter.shards(specs, options.outShardSize()).get(shard.getAsInt()));
                plan = plan.stream().filter(t -> own.contains(t.output())).toList();
            }
            long totalBytes = plan.stream().mapToLong(t -> t.output().byteLength()).sum();
            ProgressReporter progress = new ProgressReporter(listener,
                    new WriteThrottle(options.maxBytesPerSecond(), cancelled), plan.size(), totalBytes);
            MergeMethod method = merge.method();
            List<InputModel> inputs = merge.inputs();
            try (OutputWriter output = new OutputWriter(staging, specs, options.outShardSize(), shard)) {
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
        } catch (NonFiniteOutput e) {
            throw new RecipeException(e.getMessage());
        } finally {
            pool.shutdownNow();
        }
    }

    /** The merged tensors' parameters, for a method's model-wide pass to choose from. */
    private static List<TensorParameters> merged(List<PlannedTensor> plan) {
        return plan.stream().filter(t -> !t.copy()).map(PlannedTensor::parameters).toList();
    }

    /**
     * The plan with the method's model-wide statistic, if it has one, given to the tensors that read it: computed
     * here ({@link #runModelWidePass}), or taken from {@code statistics}.
     */
    private List<PlannedTensor> withModelWidePass(Opened merge, ForkJoinPool pool, ThreadLocal<Workspace> workspaces,
                                                  Optional<double[]> statistics) throws IOException, RecipeException {
        List<PlannedTensor> plan = merge.plan();
        Optional<ModelWidePass> found = merge.method().modelWidePass(merged(plan));
        if (found.isEmpty()) {
            return plan;
        }
        ModelWidePass statistic = found.get();
        if (statistics.isPresent()) {
            statistic.restore(statistics.get());
        } else {
            runModelWidePass(statistic, merge, pool, workspaces);
        }
        Predicate<PlannedTensor> reads = t -> !t.copy() && statistic.reads(t.parameters());
        return plan.stream().map(t -> reads.test(t) ? t.withParameters(statistic.apply(t.parameters())) : t).toList();
    }

    /**
     * Runs a model-wide pass over the blocks of every tensor that reads it (ordered passes in tensor and block
     * order through one accumulator; others split over the workers, their accumulators combined in tensor and
     * range order).
     */
    private void runModelWidePass(ModelWidePass statistic, Opened merge, ForkJoinPool pool,
                                  ThreadLocal<Workspace> workspaces) throws IOException {
        List<PlannedTensor> reading = merge.plan().stream().filter(t -> !t.copy() && statistic.reads(t.parameters()))
                .toList();
        for (Optional<Pass<?>> pass = statistic.nextPass(); pass.isPresent(); pass = statistic.nextPass()) {
            runOverModel(pass.get(), reading, merge.inputs(), pool, merge.budget().block(), workspaces);
        }
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
        // the merge writes its own card and recipe; the source's record of how it was made stays with it
        copyTagAlong(source, dir, name -> !Checkpoint.PROVENANCE_NAMES.contains(name) && !name.startsWith("."));
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
