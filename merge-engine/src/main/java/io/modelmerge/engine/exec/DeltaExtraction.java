package io.modelmerge.engine.exec;

import io.modelmerge.engine.delta.Bits;
import io.modelmerge.engine.delta.DeltaEdit;
import io.modelmerge.engine.delta.DeltaManifest.Encoding;
import io.modelmerge.engine.delta.DeltaManifest.TensorEntry;
import io.modelmerge.engine.delta.DeltaManifest;
import io.modelmerge.engine.kernel.DeltaKernels;
import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.kernel.MagnitudeBracket.Threshold;
import io.modelmerge.engine.kernel.MagnitudeBracket;
import io.modelmerge.engine.kernel.RandomMask;
import io.modelmerge.engine.kernel.TopK;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.storage.blob.BlobCache;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsLayout;
import io.modelmerge.storage.safetensors.SafetensorsWriter;
import io.modelmerge.storage.safetensors.TensorInfo;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Takes a fine-tune's delta from its base and stores it as a {@link DeltaEdit} says: {@code delta.safetensors}
 * with each tensor in its encoding, {@code delta.json} ({@link DeltaManifest}), the fine-tune's tag-along files,
 * and, for dense tensors, {@code delta-exact.safetensors} with the exact values of the few elements where
 * base + Δ in F32, rounded to the fine-tune's dtype, misses it, so {@code apply} gives the fine-tune back bit for
 * bit. Tensors stream in chunks on worker threads, one tensor per worker at a time, within the memory budget.
 */
public final class DeltaExtraction {
    /**
     * The most elements a chunk holds: 256 Ki (1 MiB per F32 buffer; fewer under a very small budget). Measured
     * on 2 × 1 GB BF16: DARE took 0.53–0.60 s at 256 Ki against 0.72–0.75 s at 64 Ki (fewer, larger positional
     * reads) and 0.70 s at 512 Ki and 1 Mi (buffers out of the core's cache).
     */
    private static final int MAX_CHUNK = 1 << 18;
    /** Bytes a worker holds per element of its chunk: base, fine-tune, Δ, kept values, their bytes and indices. */
    private static final int BYTES_PER_ELEMENT = 40;

    /** A magnitude threshold's sample: a window of this many elements at the start of every stride. */
    private static final int SAMPLE_WINDOW = 1 << 12;
    private static final int SAMPLE_STRIDE = 1 << 15;
    /** The sample's windows lie evenly over the tensor: a margin of 0.1% of it beside six deviations. */
    private static final double SAMPLE_SLACK = 0.001;
    /**
     * The widest bracket the full pass settles (32 high-bit buckets: 8 MiB of counts): a sparse delta's k-th
     * largest sits where |Δ| thins out, so its bracket spans more buckets than a merge's.
     */
    private static final int BRACKET_WIDTH = 32;
    /** Bytes written between background flushes: a delta is small, so a quarter of a merge's step. */
    private static final long FLUSH_EVERY = 64L << 20;

    private final MergeOptions options;
    private final MergeExecutor.MergeListener listener;
    private final AtomicBoolean cancelled;
    /** Each worker's buffers, sized once for the largest chunk and reused for every tensor it takes. */
    private final ThreadLocal<Scratch> scratch;
    private final int maxChunk;

    public DeltaExtraction(MergeOptions options) {
        this(options, p -> { }, new AtomicBoolean());
    }

    /**
     * @param listener  told the tensors and input bytes done, as merges tell theirs
     * @param cancelled set to stop the extraction: it ends with a CancellationException, leaving nothing behind
     */
    public DeltaExtraction(MergeOptions options, MergeExecutor.MergeListener listener, AtomicBoolean cancelled) {
        this.options = options;
        this.listener = listener;
        this.cancelled = cancelled;
        long perWorker = options.memoryBytes() / 2 / options.threads() / BYTES_PER_ELEMENT;
        this.maxChunk = (int) Math.max(1 << 13, Math.min(MAX_CHUNK, perWorker)) & ~7;
        this.scratch = ThreadLocal.withInitial(() -> new Scratch(maxChunk));
    }

    /** One worker's buffers. */
    private static final class Scratch {
        float[] b;
        float[] f;
        float[] d;
        float[] values;
        float[] stored;
        private byte[] bytes = new byte[0];
        private ByteBuffer indices = ByteBuffer.allocate(0);
        private int[] misses = new int[0];

        Scratch(int elements) {
            ensure(elements);
        }

        /** Base, fine-tune, Δ, stored and kept values of {@code elements}. */
        void ensure(int elements) {
            if (b != null && b.length >= elements) {
                return;
            }
            b = new float[elements];
            f = new float[elements];
            d = new float[elements];
            values = new float[elements + 16]; // compressed vectors are stored whole
            stored = new float[elements];
        }

        byte[] bytes(int size) {
            if (bytes.length < size) {
                bytes = new byte[size];
            }
            return bytes;
        }

        ByteBuffer indices(int size) {
            if (indices.capacity() < size) {
                indices = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
            }
            return indices.clear();
        }

        int[] misses(int size) {
            if (misses.length < size) {
                misses = new int[size];
            }
            return misses;
        }
    }

    /** What one output tensor of the fine-tune becomes, with what the plan could decide without reading data. */
    private record Planned(TensorInfo fineTune, Encoding encoding, long kept, List<TensorSpec> stored) {
        String name() {
            return fineTune.name();
        }
    }

    /** Extracts the delta of {@code fineTuneRef} from {@code baseRef} into the new directory {@code outDir}. */
    public DeltaManifest run(String baseRef, String fineTuneRef, DeltaEdit edit, Path outDir)
            throws IOException, RecipeException {
        StagedOutput.checkTarget(outDir);
        BlobCache cache = new BlobCache(options.cacheDir(), options.cacheBytes());
        try (InputModel base = InputModel.open(baseRef, options, cache);
             InputModel fineTune = InputModel.open(fineTuneRef, options, cache);
             StagedOutput output = new StagedOutput(outDir)) {
            // the content digests read both models once more; they run beside the extraction
            CompletableFuture<String[]> digests = CompletableFuture.supplyAsync(
                    () -> {
                        try {
                            return new String[] {base.contentDigest(), fineTune.contentDigest()};
                        } catch (IOException e) {
                            throw new java.io.UncheckedIOException(e);
                        }
                    }, work -> Thread.ofPlatform().daemon().name("delta-digest").start(work));
            Map<String, String> tied = tiedWeights(fineTune);
            ExecutorService pool = Executors.newFixedThreadPool(options.threads(),
                    Thread.ofPlatform().daemon().name("delta-", 0).factory());
            List<Planned> plan;
            List<Result> results;
            SafetensorsLayout layout;
            ProgressReporter progress;
            try {
                plan = plan(base, fineTune, edit, tied, pool);
                Files.createDirectories(output.dir());
                List<TensorSpec> specs = new ArrayList<>();
                plan.forEach(p -> specs.addAll(p.stored()));
                layout = SafetensorsLayout.of(specs, Map.of("format", "modelmerge-delta"));
                progress = new ProgressReporter(listener, new WriteThrottle(options.maxBytesPerSecond(), cancelled),
                        plan.size(), plan.stream().mapToLong(p -> p.fineTune().byteLength()).sum());
                results = write(plan, layout, output.dir().resolve(DeltaManifest.WEIGHTS), base, fineTune, edit,
                        progress, pool);
            } finally {
                pool.shutdownNow();
            }
            List<TensorEntry> entries = new ArrayList<>();
            Map<String, Exact> exact = new LinkedHashMap<>();
            for (Result r : results) {
                entries.add(r.entry());
                if (r.exact().count() > 0) {
                    exact.put(r.entry().name(), r.exact());
                }
            }
            progress.finished();
            long deltaBytes = layout.tensors().stream().mapToLong(TensorInfo::byteLength).sum();
            if (!exact.isEmpty()) {
                deltaBytes += writeExact(exact, output.dir().resolve(DeltaManifest.EXACT));
            }
            long fineTuneBytes = fineTune.tensors().stream().mapToLong(TensorInfo::byteLength).sum();
            MergeExecutor.copyTagAlong(fineTune.checkpoint(), output.dir(), name -> !name.equals("README.md")
                    && !name.equals("merge_recipe.yml") && !name.startsWith("."));
            DeltaManifest manifest = new DeltaManifest(DeltaManifest.FORMAT_VERSION, edit.operation(), edit.parameters(),
                    new DeltaManifest.Source(baseRef, MergeExecutor.await(digests)[0]),
                    new DeltaManifest.Source(fineTuneRef, MergeExecutor.await(digests)[1]), entries, tied, deltaBytes,
                    fineTuneBytes);
            Files.write(output.dir().resolve(DeltaManifest.FILE_NAME), manifest.toJson());
            Files.writeString(output.dir().resolve("README.md"), DeltaCard.write(outDir.getFileName().toString(), manifest));
            output.publish();
            return manifest;
        }
    }

    /** Writes every planned tensor into {@code file}, one tensor per worker at a time, write-back running behind. */
    private List<Result> write(List<Planned> plan, SafetensorsLayout layout, Path file, InputModel base,
                               InputModel fineTune, DeltaEdit edit, ProgressReporter progress, ExecutorService pool)
            throws IOException {
        try (SafetensorsWriter writer = SafetensorsWriter.create(file, layout);
             WriteBehind writeBehind = new WriteBehind(writer::flush, FLUSH_EVERY)) {
            AtomicLong written = new AtomicLong();
            Output out = (tensor, offset, data) -> {
                writer.write(tensor, offset, data);
                writeBehind.reached(written.addAndGet(data.byteSize()));
            };
            List<Future<Result>> futures = new ArrayList<>();
            for (Planned p : plan) {
                futures.add(pool.submit(() -> {
                    Result r = new TensorJob(p, base, fineTune, edit, out, progress).run();
                    progress.tensorDone();
                    return r;
                }));
            }
            List<Result> results = new ArrayList<>();
            for (Future<Result> f : futures) {
                results.add(MergeExecutor.await(f));
            }
            writeBehind.await();
            writer.commit();
            return results;
        }
    }

    /**
     * Tensors stored once for several names: an output head tied to the input embedding (same shape, dtype and
     * bytes) is recorded as tied and not stored again.
     */
    private static Map<String, String> tiedWeights(InputModel fineTune) {
        Map<String, String> tied = new LinkedHashMap<>();
        for (TensorInfo head : fineTune.tensors()) {
            if (!head.name().equals("lm_head.weight") && !head.name().endsWith("embed_out.weight")) {
                continue;
            }
            for (TensorInfo embedding : fineTune.tensors()) {
                boolean candidate = embedding != head && (embedding.name().endsWith("embed_tokens.weight")
                        || embedding.name().endsWith("wte.weight") || embedding.name().endsWith("embed_in.weight"));
                if (candidate && embedding.dtype() == head.dtype() && Arrays.equals(embedding.shape(), head.shape())
                        && fineTune.rawTensor(head.name()).data().mismatch(fineTune.rawTensor(embedding.name()).data()) < 0) {
                    tied.put(head.name(), embedding.name());
                }
            }
        }
        return tied;
    }

    /** What each tensor becomes; DARE's kept counts (a pass of the mask over every element) on {@code pool}. */
    private List<Planned> plan(InputModel base, InputModel fineTune, DeltaEdit edit, Map<String, String> tied,
                               ExecutorService pool) throws IOException, RecipeException {
        List<Future<Planned>> plan = new ArrayList<>();
        for (TensorInfo t : fineTune.tensors()) {
            if (tied.containsKey(t.name())) {
                continue;
            }
            var inBase = base.tensor(t.name());
            boolean comparable = inBase.isPresent() && Arrays.equals(inBase.get().shape(), t.shape())
                    && Floats.supports(t.dtype()) && Floats.supports(inBase.get().dtype());
            long n = t.elementCount();
            String name = t.name();
            if (!comparable) {
                plan.add(planned(new Planned(t, Encoding.WHOLE, n, List.of(new TensorSpec(name, t.dtype(), t.shape())))));
                continue;
            }
            if (n > Integer.MAX_VALUE - 8 && !(edit instanceof DeltaEdit.Dense)) {
                throw new RecipeException("tensor '" + name + "' has " + n + " elements; edits take tensors of up to 2^31");
            }
            switch (edit) {
                case DeltaEdit.Dare dare when edit.edits(name, t.rank()) -> {
                    int seed = RandomMask.seed(RandomMask.tensorSeed(dare.seed(), name), 0);
                    plan.add(pool.submit(() -> sparse(t, RandomMask.count(seed, 0, n, RandomMask.threshold(1 - dare.p())))));
                }
                case DeltaEdit.Magnitude magnitude when edit.edits(name, t.rank()) -> {
                    long columns = columns(t);
                    long kept = magnitude.scope() == DeltaEdit.Scope.ROW
                            ? (long) Math.floor(magnitude.density() * columns) * (n / columns)
                            : (long) Math.floor(magnitude.density() * n);
                    plan.add(planned(sparse(t, kept)));
                }
                case DeltaEdit.BitDelta bits when edit.edits(name, t.rank()) -> {
                    long scales = bits.scope() == DeltaEdit.Scope.ROW ? t.dim(0) : 1;
                    plan.add(planned(new Planned(t, Encoding.SIGNS, n, List.of(
                            new TensorSpec(name + ".signs", DType.U8, new long[] {Bits.bytesFor(n)}),
                            new TensorSpec(name + ".scale", DType.F32, new long[] {scales})))));
                }
                default -> plan.add(planned(new Planned(t, Encoding.DENSE, n,
                        List.of(new TensorSpec(name, DType.F32, t.shape())))));
            }
        }
        List<Planned> planned = new ArrayList<>();
        for (Future<Planned> p : plan) {
            planned.add(MergeExecutor.await(p));
        }
        return planned;
    }

    private static Future<Planned> planned(Planned p) {
        return CompletableFuture.completedFuture(p);
    }

    /** Kept values with a bitmap (n/8 bytes) or 4- or 8-byte indices, whichever is smaller. */
    private static Planned sparse(TensorInfo t, long kept) {
        long n = t.elementCount();
        DType index = n > Integer.MAX_VALUE ? DType.I64 : DType.I32;
        TensorSpec positions = Bits.bytesFor(n) <= kept * (index.bits() / 8)
                ? new TensorSpec(t.name() + ".bitmap", DType.U8, new long[] {Bits.bytesFor(n)})
                : new TensorSpec(t.name() + ".indices", index, new long[] {kept});
        return new Planned(t, Encoding.SPARSE, kept, List.of(new TensorSpec(t.name() + ".values", DType.F32,
                new long[] {kept}), positions));
    }

    private static long columns(TensorInfo t) {
        return t.rank() == 0 ? 1 : Math.max(1, t.dim(t.rank() - 1));
    }

    /** Elements of a dense tensor whose exact fine-tune values are stored beside the delta. */
    private static final class Exact {
        private long[] index = new long[16];
        private float[] value = new float[16];
        private int count;
        private final DType dtype;

        Exact(DType dtype) {
            this.dtype = dtype;
        }

        void add(long i, float v) {
            if (count == index.length) {
                index = Arrays.copyOf(index, count * 2);
                value = Arrays.copyOf(value, count * 2);
            }
            index[count] = i;
            value[count++] = v;
        }

        int count() {
            return count;
        }
    }

    private record Result(TensorEntry entry, Exact exact) {
    }

    /** Where a tensor job writes: {@link SafetensorsWriter#write}, with write-back running behind. */
    @FunctionalInterface
    private interface Output {
        void write(String tensor, long offset, MemorySegment data) throws IOException;
    }

    private static long writeExact(Map<String, Exact> exact, Path file) throws IOException {
        List<TensorSpec> specs = new ArrayList<>();
        exact.forEach((name, e) -> {
            specs.add(new TensorSpec(name + ".index", DType.I64, new long[] {e.count()}));
            specs.add(new TensorSpec(name + ".value", e.dtype, new long[] {e.count()}));
        });
        SafetensorsLayout layout = SafetensorsLayout.of(specs, Map.of("format", "modelmerge-delta-exact"));
        try (SafetensorsWriter writer = SafetensorsWriter.create(file, layout)) {
            for (var entry : exact.entrySet()) {
                Exact e = entry.getValue();
                ByteBuffer indices = ByteBuffer.allocate(e.count() * 8).order(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; i < e.count(); i++) {
                    indices.putLong(e.index[i]);
                }
                writer.write(entry.getKey() + ".index", 0, MemorySegment.ofArray(indices.array()));
                MemorySegment values = MemorySegment.ofArray(new byte[e.count() * (e.dtype.bits() / 8)]);
                Floats.narrow(e.value, e.count(), values, e.dtype, 0);
                writer.write(entry.getKey() + ".value", 0, values);
            }
            writer.commit();
        }
        return layout.tensors().stream().mapToLong(TensorInfo::byteLength).sum();
    }

    /** One tensor's extraction, on one worker: the passes its encoding needs, then the one that writes it. */
    private final class TensorJob {
        private final Planned planned;
        private final InputModel base;
        private final InputModel fineTune;
        private final DeltaEdit edit;
        private final Output writer;
        private final String name;
        private final long n;
        private final int chunk;
        private final float[] b;
        private final float[] f;
        private final float[] d;
        private final Scratch buffers;
        private final TensorSource baseSource;
        private final TensorSource fineTuneSource;
        /** Σ θ², Σ (θ̂ − θ)², Σ Δ², Σ (Δ̂ − Δ)², in double. */
        private double normFineTune;
        private double errorFineTune;
        private double normDelta;
        private double errorDelta;

        private final ProgressReporter progress;

        TensorJob(Planned planned, InputModel base, InputModel fineTune, DeltaEdit edit, Output writer,
                  ProgressReporter progress) {
            this.progress = progress;
            this.planned = planned;
            this.base = base;
            this.fineTune = fineTune;
            this.edit = edit;
            this.writer = writer;
            this.name = planned.name();
            this.n = planned.fineTune().elementCount();
            long columns = columns(planned.fineTune());
            // whole rows (per-row edits work row by row), a multiple of 8 elements (bits pack whole bytes)
            long rows = Math.max(1, maxChunk / columns);
            while (rows > 1 && rows * columns % 8 != 0) {
                rows--;
            }
            this.chunk = (int) Math.min(n, Math.max(columns, rows * columns));
            if (chunk % 8 != 0 && chunk < n && planned.encoding() != Encoding.DENSE) {
                throw new IllegalStateException("tensor '" + name + "': rows of " + columns + " elements cannot be"
                        + " chunked in whole bytes of bits");
            }
            this.buffers = scratch.get();
            buffers.ensure(chunk);
            this.b = buffers.b;
            this.f = buffers.f;
            this.d = buffers.d;
            this.baseSource = planned.encoding() == Encoding.WHOLE ? null : base.source(name);
            this.fineTuneSource = planned.encoding() == Encoding.WHOLE ? null : fineTune.source(name);
        }

        /** Reads chunk [from, from + chunk) of base and fine-tune (less at the end), and Δ = f − b. */
        private int load(long from) {
            return load(from, (int) Math.min(chunk, n - from));
        }

        /** Reads elements [from, from + length) of base and fine-tune, and Δ = f − b. */
        private int load(long from, int length) {
            checkCancelled();
            baseSource.read(from, length, b);
            fineTuneSource.read(from, length, f);
            DeltaKernels.difference(f, b, d, length);
            return length;
        }

        private void checkCancelled() {
            if (cancelled.get() || Thread.currentThread().isInterrupted()) {
                throw new java.util.concurrent.CancellationException("delta extraction cancelled");
            }
        }

        /** The final pass wrote the chunk of {@code length} elements: that much of the fine-tune is done. */
        private void done(int length) {
            progress.written((long) length * planned.fineTune().dtype().bits() / 8);
        }

        Result run() throws IOException {
            DType dtype = planned.fineTune().dtype();
            Exact exact = new Exact(dtype);
            switch (planned.encoding()) {
                case WHOLE -> {
                    writer.write(name, 0, fineTune.rawTensor(name).data());
                    done((int) Math.min(Integer.MAX_VALUE, n));
                }
                case DENSE -> dense(exact);
                case SPARSE -> {
                    if (edit instanceof DeltaEdit.Dare dare) {
                        dare(dare);
                    } else {
                        magnitude((DeltaEdit.Magnitude) edit);
                    }
                }
                case SIGNS -> signs((DeltaEdit.BitDelta) edit);
            }
            double relative = normFineTune == 0 ? Math.sqrt(errorFineTune) : Math.sqrt(errorFineTune / normFineTune);
            double deltaRelative = normDelta == 0 ? Math.sqrt(errorDelta) : Math.sqrt(errorDelta / normDelta);
            return new Result(new TensorEntry(name, planned.encoding(), dtype, planned.fineTune().shape(),
                    planned.kept(), exact.count(), relative, deltaRelative), exact);
        }

        /** Adds a chunk's reconstruction errors: Δ̂ stored for Δ, the fine-tune rebuilt as apply rebuilds it. */
        private void account(float[] stored, int length) {
            double[] sums = new double[4];
            DeltaKernels.errors(b, f, d, stored, length, planned.fineTune().dtype(), sums);
            normFineTune += sums[0];
            errorFineTune += sums[1];
            normDelta += sums[2];
            errorDelta += sums[3];
        }

        /** Δ in F32, and the exact values where base + Δ misses the fine-tune: exact by construction (error 0). */
        private void dense(Exact exact) throws IOException {
            DType dtype = planned.fineTune().dtype();
            MemorySegment out = MemorySegment.ofArray(buffers.bytes(chunk * 4));
            int[] misses = buffers.misses(chunk);
            for (long from = 0; from < n; from += chunk) {
                checkCancelled();
                int length = (int) Math.min(chunk, n - from);
                baseSource.read(from, length, b);
                fineTuneSource.read(from, length, f);
                int missed = DeltaKernels.delta(b, f, d, length, dtype, misses);
                for (int k = 0; k < missed; k++) {
                    exact.add(from + misses[k], Floats.round(f[misses[k]], dtype));
                }
                Floats.narrow(d, length, out, DType.F32, 0);
                writer.write(name, from * 4, out.asSlice(0, length * 4L));
                done(length);
            }
        }

        private void dare(DeltaEdit.Dare dare) throws IOException {
            int seed = RandomMask.seed(RandomMask.tensorSeed(dare.seed(), name), 0);
            int threshold = RandomMask.threshold(1 - dare.p());
            float scale = switch (dare.rescale()) {
                case INVERSE -> (float) (1 / (1 - dare.p()));
                case NONE -> 1f;
                case L1 -> l1Scale(seed, threshold);
            };
            writeSparse((from, length, stored, bits, values) -> DeltaKernels.dare(d, length, from, seed, threshold, scale,
                    stored, bits, values));
        }

        /** Σ|Δ| / Σ|kept Δ| over the tensor (1 when either is below mergekit's 1e-7). */
        private float l1Scale(int seed, int threshold) {
            double all = 0;
            double keptSum = 0;
            float[] stored = buffers.stored;
            byte[] bits = new byte[(int) Bits.bytesFor(chunk)];
            for (long from = 0; from < n; from += chunk) {
                int length = load(from);
                DeltaKernels.dare(d, length, from, seed, threshold, 1f, stored, bits, buffers.values);
                for (int i = 0; i < length; i++) {
                    all += Math.abs(d[i]);
                    keptSum += Math.abs(stored[i]);
                }
            }
            return all >= 1e-7 && keptSum >= 1e-7 ? (float) (all / keptSum) : 1f;
        }

        /**
         * Fills a chunk's stored values (kept Δ̂, else 0), its bitmap (cleared beforehand) and, in index order, its
         * kept values; returns how many it kept.
         */
        @FunctionalInterface
        private interface Selection {
            int select(long from, int length, float[] stored, byte[] bits, float[] values);
        }

        /**
         * Exactly k entries by |Δ|: the k-th largest and how many tie with it, then a write pass that keeps those
         * above it and the first of the tied ones, in index order, until k are kept.
         */
        private void magnitude(DeltaEdit.Magnitude magnitude) throws IOException {
            if (magnitude.scope() == DeltaEdit.Scope.ROW) {
                writeSparseRows((int) columns(planned.fineTune()),
                        (int) Math.floor(magnitude.density() * columns(planned.fineTune())));
                return;
            }
            long k = planned.kept();
            if (k == 0) {
                writeSparse((from, length, stored, bits, values) -> {
                    Arrays.fill(stored, 0, length, 0f);
                    return 0;
                });
                return;
            }
            Threshold threshold = threshold(k);
            long[] tiesLeft = {k - (threshold.atOrAbove() - threshold.tied())};
            writeSparse((from, length, stored, bits, values) -> DeltaKernels.magnitude(d, length, threshold.value(),
                    tiesLeft, stored, bits, values));
        }

        /**
         * The k-th largest |Δ|, with how many are at or above it and how many equal it: in one full pass where a
         * sample (a window of 4 Ki elements in every 32 Ki) brackets it, else in {@link TopK}'s two. A tensor of
         * one chunk goes to TopK at once: a sample of it would be all of it, a pass as long as one of TopK's.
         */
        private Threshold threshold(long k) {
            if (n > chunk) {
                MagnitudeBracket.Sample sample = new MagnitudeBracket.Sample();
                for (long from = 0; from < n; from += SAMPLE_STRIDE) {
                    sample.add(d, load(from, (int) Math.min(Math.min(SAMPLE_WINDOW, chunk), n - from)));
                }
                MagnitudeBracket bracket = MagnitudeBracket.of(List.of(sample), k, n, false, SAMPLE_SLACK);
                if (bracket.width() <= BRACKET_WIDTH) {
                    MagnitudeBracket.Candidates candidates = bracket.candidates();
                    for (long from = 0; from < n; from += chunk) {
                        candidates.add(d, load(from));
                    }
                    var found = bracket.threshold(List.of(candidates), k);
                    if (found.isPresent()) {
                        return found.get();
                    }
                }
            }
            TopK top = new TopK(k);
            while (!top.done()) {
                TopK.Counts counts = top.counts();
                for (long from = 0; from < n; from += chunk) {
                    counts.add(d, load(from));
                }
                top.end(List.of(counts));
            }
            return new Threshold(top.threshold(), top.atOrAbove(), top.tiedAt(0));
        }

        /**
         * Per row, the kPerRow largest |Δ|, ties by position: each row's entries sorted as primitive keys, the
         * larger |Δ| first (its bits inverted above) and the column below.
         */
        private void writeSparseRows(int columns, int kPerRow) throws IOException {
            long[] order = new long[columns];
            writeSparse((from, length, stored, bits, values) -> {
                int kept = 0;
                for (int row = 0; row < length; row += columns) {
                    for (int c = 0; c < columns; c++) {
                        // |Δ|'s bits (NaN made one value) order as Float.compare does for non-negative floats
                        long magnitude = Float.floatToIntBits(Math.abs(d[row + c]));
                        order[c] = (0x7FFFFFFFL - magnitude) << 32 | c;
                    }
                    Arrays.sort(order);
                    Arrays.fill(stored, row, row + columns, 0f);
                    for (int k = 0; k < kPerRow; k++) {
                        int i = row + (int) order[k];
                        stored[i] = d[i];
                        bits[i >>> 3] |= (byte) (1 << (i & 7));
                    }
                }
                for (int i = 0; i < length; i++) {
                    if ((bits[i >>> 3] >>> (i & 7) & 1) != 0) {
                        values[kept++] = d[i];
                    }
                }
                return kept;
            });
        }

        /** The write pass of a sparse tensor: the kept values, and their bitmap or indices. */
        private void writeSparse(Selection selection) throws IOException {
            boolean bitmap = planned.stored().get(1).name().endsWith(".bitmap");
            DType indexType = planned.stored().get(1).dtype();
            String valuesName = name + ".values";
            String positionsName = planned.stored().get(1).name();
            float[] stored = buffers.stored;
            float[] values = buffers.values;
            byte[] bits = new byte[(int) Bits.bytesFor(chunk)];
            int mostKept = (int) Math.min(chunk, planned.kept());
            ByteBuffer indices = bitmap ? null : buffers.indices(mostKept * (indexType.bits() / 8));
            MemorySegment valueBytes = MemorySegment.ofArray(buffers.bytes(mostKept * 4));
            long written = 0;
            for (long from = 0; from < n; from += chunk) {
                int length = load(from);
                Arrays.fill(bits, (byte) 0);
                int count = selection.select(from, length, stored, bits, values);
                if (written + count > planned.kept()) {
                    throw new IllegalStateException("tensor '" + name + "' keeps more entries than planned");
                }
                account(stored, length);
                Floats.narrow(values, count, valueBytes, DType.F32, 0);
                writer.write(valuesName, written * 4, valueBytes.asSlice(0, count * 4L));
                if (bitmap) {
                    writer.write(positionsName, from / 8, MemorySegment.ofArray(bits).asSlice(0, Bits.bytesFor(length)));
                } else {
                    indices.clear();
                    for (int byteIndex = 0; byteIndex < Bits.bytesFor(length); byteIndex++) {
                        for (int set = bits[byteIndex] & 0xFF; set != 0; set &= set - 1) {
                            long i = from + byteIndex * 8 + Integer.numberOfTrailingZeros(set);
                            if (indexType == DType.I64) {
                                indices.putLong(i);
                            } else {
                                indices.putInt((int) i);
                            }
                        }
                    }
                    writer.write(positionsName, written * (indexType.bits() / 8),
                            MemorySegment.ofArray(indices.array()).asSlice(0, (long) count * (indexType.bits() / 8)));
                }
                written += count;
                done(length);
            }
            if (written != planned.kept()) {
                throw new IllegalStateException("tensor '" + name + "' kept " + written + " entries, planned "
                        + planned.kept());
            }
        }

        /**
         * BitDelta: a pass for α (mean |Δ| over the tensor or each row), then one that writes the signs. A row's
         * elements lie in one chunk (chunks hold whole rows).
         */
        private void signs(DeltaEdit.BitDelta bitDelta) throws IOException {
            int columns = (int) columns(planned.fineTune());
            boolean perRow = bitDelta.scope() == DeltaEdit.Scope.ROW;
            float[] alpha = new float[perRow ? (int) (n / columns) : 1];
            double[] lanes = new double[DeltaKernels.SUM_LANES];
            for (long from = 0; from < n; from += chunk) {
                int length = load(from);
                if (!perRow) {
                    DeltaKernels.absSum(d, 0, length, lanes);
                    continue;
                }
                for (int row = 0; row < length; row += columns) {
                    Arrays.fill(lanes, 0);
                    DeltaKernels.absSum(d, row, row + columns, lanes);
                    alpha[(int) ((from + row) / columns)] = (float) (DeltaKernels.total(lanes) / columns);
                }
            }
            if (!perRow) {
                alpha[0] = (float) (DeltaKernels.total(lanes) / n);
            }
            byte[] bits = new byte[(int) Bits.bytesFor(chunk)];
            float[] stored = buffers.stored;
            String signsName = name + ".signs";
            for (long from = 0; from < n; from += chunk) {
                int length = load(from);
                Arrays.fill(bits, (byte) 0);
                if (perRow) {
                    for (int row = 0; row < length; row += columns) {
                        DeltaKernels.signs(d, row, row + columns, alpha[(int) ((from + row) / columns)], bits, stored);
                    }
                } else {
                    DeltaKernels.signs(d, 0, length, alpha[0], bits, stored);
                }
                account(stored, length);
                writer.write(signsName, from / 8, MemorySegment.ofArray(bits).asSlice(0, Bits.bytesFor(length)));
                done(length);
            }
            MemorySegment scale = MemorySegment.ofArray(new byte[alpha.length * 4]);
            Floats.narrow(alpha, alpha.length, scale, DType.F32, 0);
            writer.write(name + ".scale", 0, scale);
        }
    }
}
