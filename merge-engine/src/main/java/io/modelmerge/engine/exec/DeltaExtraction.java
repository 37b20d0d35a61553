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
import java.lang.foreign.ValueLayout;
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
import java.util.function.Consumer;
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
    /**
     * Bytes a worker holds per element of its chunk: base, fine-tune, Δ, kept values, their bytes and indices, and
     * the stored BF16 bytes of base and fine-tune.
     */
    private static final int BYTES_PER_ELEMENT = 44;

    /** A magnitude threshold's sample: a window of this many elements at the start of every stride. */
    private static final int SAMPLE_WINDOW = 1 << 13;
    private static final int SAMPLE_STRIDE = 1 << 18;
    /** The sample's windows lie evenly over the tensor: a margin of 0.1% of it beside six deviations. */
    private static final double SAMPLE_SLACK = 0.001;
    /**
     * Bytes written between background flushes. The disk writes a sparse delta about as fast as two cores make
     * it, so what is left for the final sync decides the end: on 2 × 1 GB BF16, DARE took 0.50 s median at 16 MiB
     * against 0.55 s at 64 MiB (alternating runs; magnitude the same, 0.57 s, BitDelta 0.75 against 0.77 s).
     */
    private static final long FLUSH_EVERY = 16L << 20;

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
        /** Base and fine-tune bytes as stored, for the passes that read BF16 straight from them. */
        private ByteBuffer storedBase = ByteBuffer.allocateDirect(0);
        private ByteBuffer storedFineTune = ByteBuffer.allocateDirect(0);
        private MemorySegment bytes = MemorySegment.NULL;
        private MemorySegment bitBytes = MemorySegment.NULL;
        private ByteBuffer indices = ByteBuffer.allocate(0);
        private int[] misses = new int[0];
        final Held held = new Held();
        final MagnitudeBracket.Sample sample = new MagnitudeBracket.Sample();
        private TopK.Reused selection;

        Scratch(int elements) {
            ensure(elements);
        }

        /** Base, fine-tune, Δ, stored and kept values of {@code elements}. */
        void ensure(int elements) {
            if (b != null && b.length >= elements) {
                return;
            }
            storedBase = ByteBuffer.allocateDirect(elements * 2);
            storedFineTune = ByteBuffer.allocateDirect(elements * 2);
            b = new float[elements];
            f = new float[elements];
            d = new float[elements];
            values = new float[elements + 16]; // compressed vectors are stored whole
            stored = new float[elements + 16];
        }

        /**
         * Off-heap bytes for what goes to the file: a channel writes native memory as it is, where a heap array
         * is first copied into a temporary native buffer.
         */
        MemorySegment bytes(long size) {
            if (bytes.byteSize() < size) {
                bytes = MemorySegment.ofBuffer(ByteBuffer.allocateDirect((int) size));
            }
            return bytes.asSlice(0, size);
        }

        /** {@code length} bytes of {@code bits}, off-heap (in a buffer apart from {@link #bytes}'s). */
        MemorySegment bits(byte[] bits, long length) {
            if (bitBytes.byteSize() < length) {
                bitBytes = MemorySegment.ofBuffer(ByteBuffer.allocateDirect((int) Math.max(length, 1 << 16)));
            }
            MemorySegment.copy(bits, 0, bitBytes, ValueLayout.JAVA_BYTE, 0, (int) length);
            return bitBytes.asSlice(0, length);
        }

        /** The histograms of the magnitude selections this worker makes, made at the first. */
        TopK.Reused selection() {
            if (selection == null) {
                selection = new TopK.Reused();
            }
            return selection;
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

    /**
     * The entries a one-pass magnitude selection holds: which they are (a bitmap of the tensor) and, in index
     * order, their Δ. A worker keeps one and reuses it for every tensor it takes (its
     * arrays grow, up to each tensor's limit, and stay: fresh memory for every tensor cost more than the
     * selection).
     */
    private static final class Held {
        static final int BYTES_PER_ENTRY = 4;

        /** Which entries of the tensor are held, a bit each. */
        private byte[] which = new byte[0];
        float[] delta = new float[0];
        private long limit;
        private int size;
        /** How many held entries {@link #keep} has gone through. */
        private int taken;
        /** Which of a chunk's held entries {@link #keep} keeps, a bit each. */
        private long[] flags = new long[0];

        /** Empties it for a tensor of {@code elements}, to hold at most {@code limit} entries. */
        Held reset(long elements, long expected, long limit) {
            if (which.length < Bits.bytesFor(elements)) {
                which = new byte[(int) Bits.bytesFor(elements)];
            }
            this.limit = limit;
            this.size = 0;
            this.taken = 0;
            int capacity = (int) Math.min(limit, expected);
            if (delta.length < capacity) {
                delta = new float[capacity]; // what it held is done with: no need to copy it
            }
            return this;
        }

        int size() {
            return size;
        }

        /**
         * Of the held entries in the chunk of {@code length} at {@code from} (chunks are taken in order), keeps
         * those above {@code threshold} and those equal to it while {@code tiesLeft[0]} lasts (counted down): their
         * bits set in {@code bits}, their Δ in order in {@code values}. Adds to {@code correction} what the errors
         * of those it drops gain over the errors they were counted with as kept ([1] of the fine-tune, [3] of Δ:
         * Δ² each, within float rounding). Returns how many it kept.
         */
        int keep(long from, int length, float threshold, long[] tiesLeft, byte[] bits, float[] values,
                 double[] correction) {
            int start = (int) (from / 8);
            int bytes = (int) Bits.bytesFor(length);
            int count = 0;
            for (int at = 0; at < bytes; at += 8) {
                count += Long.bitCount(word(which, start + at, Math.min(8, bytes - at)));
            }
            int words = count / 64 + 1;
            if (flags.length < words + 1) {
                flags = new long[words + 1];
            }
            Arrays.fill(flags, 0, words + 1, 0L);
            int kept = DeltaKernels.keepLargest(delta, taken, count, threshold, tiesLeft, flags, values);
            for (int w = 0; w < words; w++) {
                long valid = w < count / 64 ? -1L : (1L << (count & 63)) - 1;
                for (long dropped = ~flags[w] & valid; dropped != 0; dropped &= dropped - 1) {
                    // counted as kept: Δ̂ = Δ and b + Δ̂ rebuilds f (but for a rare rounding miss, off by an ulp of
                    // θ); dropped, Δ̂ = 0 and b is rebuilt, off by Δ in both errors
                    int h = taken + w * 64 + Long.numberOfTrailingZeros(dropped);
                    correction[1] += (double) delta[h] * delta[h];
                    correction[3] += (double) delta[h] * delta[h];
                }
            }
            // each word of the chunk's held bits takes as many kept flags as it holds entries, in order
            int flag = 0;
            int at = 0;
            for (int whole = bytes & ~7; at < whole; at += 8) {
                long word = (long) LONGS.get(which, start + at);
                LONGS.set(bits, at, Long.expand(flagsFrom(flag), word));
                flag += Long.bitCount(word);
            }
            if (at < bytes) {
                long keptWord = Long.expand(flagsFrom(flag), word(which, start + at, bytes - at));
                for (int j = 0; at + j < bytes; j++) {
                    bits[at + j] = (byte) (keptWord >>> 8 * j);
                }
            }
            taken += count;
            return kept;
        }

        private static final java.lang.invoke.VarHandle LONGS = java.lang.invoke.MethodHandles.byteArrayViewVarHandle(
                long[].class, ByteOrder.LITTLE_ENDIAN);

        /** {@code bytes} (at most 8) bytes of {@code array} at {@code at} as a little-endian long. */
        private static long word(byte[] array, int at, int bytes) {
            if (bytes == 8) {
                return (long) LONGS.get(array, at);
            }
            long word = 0;
            for (int j = bytes - 1; j >= 0; j--) {
                word = word << 8 | (array[at + j] & 0xFFL);
            }
            return word;
        }

        /**
         * The 64 kept flags from flag {@code from} on, as the low bits of a long (Long.expand takes as many as its
         * mask has bits, so the rest need no clearing; {@code flags} holds a word past the last flag).
         */
        private long flagsFrom(int from) {
            int word = from >>> 6;
            int shift = from & 63;
            return flags[word] >>> shift | flags[word + 1] << 1 << 63 - shift; // shift 0: the next word drops out
        }

        /** Adds a chunk's held entries (bits of the chunk at {@code from}); false where they pass the limit. */
        boolean add(long from, int length, byte[] chunkBits, float[] chunkDelta, int count) {
            if (size + (long) count > limit) {
                return false;
            }
            if (size + count > delta.length) {
                delta = Arrays.copyOf(delta, (int) Math.min(Math.min(limit, Integer.MAX_VALUE - 16),
                        Math.max(size + count, delta.length + delta.length / 2L)));
            }
            System.arraycopy(chunkBits, 0, which, (int) (from / 8), (int) Bits.bytesFor(length));
            System.arraycopy(chunkDelta, 0, delta, size, count);
            size += count;
            return true;
        }
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
        /**
         * Base and fine-tune both BF16 as stored in their files (no delta or adapter applied on the fly): the
         * sparse passes read their bytes as they are ({@link DeltaKernels#sparseBf16}).
         */
        private final boolean storedBf16;
        private final MemorySegment storedBase;
        private final MemorySegment storedFineTune;
        /** Σ θ², Σ (θ̂ − θ)², Σ Δ², Σ (Δ̂ − Δ)², in double. */
        private final double[] errors = new double[4];

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
            this.storedBf16 = baseSource instanceof StoredSource stored && stored.info().dtype() == DType.BF16
                    && fineTuneSource instanceof StoredSource tuned && tuned.info().dtype() == DType.BF16;
            this.storedBase = MemorySegment.ofBuffer(buffers.storedBase.duplicate().clear());
            this.storedFineTune = MemorySegment.ofBuffer(buffers.storedFineTune.duplicate().clear());
        }

        /** Reads chunk [from, from + chunk) of base and fine-tune (less at the end), and Δ = f − b. */
        private int load(long from) {
            return load(from, (int) Math.min(chunk, n - from));
        }

        /** Reads elements [from, from + length) of base and fine-tune, and Δ = f − b. */
        private int load(long from, int length) {
            read(from, length);
            DeltaKernels.difference(f, b, d, length);
            return length;
        }

        /** Reads elements [from, from + length) of base and fine-tune. */
        private int read(long from, int length) {
            checkCancelled();
            baseSource.read(from, length, b);
            fineTuneSource.read(from, length, f);
            return length;
        }

        /** Reads elements [from, from + length) of base and fine-tune as stored, where {@link #storedBf16}. */
        private int readStored(long from, int length) {
            checkCancelled();
            ((StoredSource) baseSource).readBytes(from, length, buffers.storedBase);
            ((StoredSource) fineTuneSource).readBytes(from, length, buffers.storedFineTune);
            return length;
        }

        /** The sparse kernel over a chunk read by {@link #readSparse}: stored BF16 bytes or widened floats. */
        private int sparse(long from, int length, DeltaKernels.Keep keep, byte[] bits, float[] values, double[] sums) {
            return storedBf16
                    ? DeltaKernels.sparseBf16(storedBase, storedFineTune, length, from, keep, bits, values, sums)
                    : DeltaKernels.sparse(b, f, length, from, keep, planned.fineTune().dtype(), bits, values, sums);
        }

        /** Reads a chunk for {@link #sparse}. */
        private int readSparse(long from, int length) {
            return storedBf16 ? readStored(from, length) : read(from, length);
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
            double relative = errors[0] == 0 ? Math.sqrt(errors[1]) : Math.sqrt(errors[1] / errors[0]);
            double deltaRelative = errors[2] == 0 ? Math.sqrt(errors[3]) : Math.sqrt(errors[3] / errors[2]);
            return new Result(new TensorEntry(name, planned.encoding(), dtype, planned.fineTune().shape(),
                    planned.kept(), exact.count(), relative, deltaRelative), exact);
        }

        /** Adds a chunk's reconstruction errors: Δ̂ stored for Δ, the fine-tune rebuilt as apply rebuilds it. */
        private void account(float[] stored, int length) {
            double[] sums = new double[4];
            DeltaKernels.errors(b, f, d, stored, length, planned.fineTune().dtype(), sums);
            account(sums);
        }

        /** Adds one chunk's error sums, as {@link DeltaKernels#errors} gives them. */
        private void account(double[] sums) {
            for (int k = 0; k < errors.length; k++) {
                errors[k] += sums[k];
            }
        }

        /** Δ in F32, and the exact values where base + Δ misses the fine-tune: exact by construction (error 0). */
        private void dense(Exact exact) throws IOException {
            DType dtype = planned.fineTune().dtype();
            MemorySegment out = buffers.bytes(chunk * 4L);
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
            DeltaKernels.Keep keep = new DeltaKernels.Keep.Random(seed, threshold, scale);
            writeSparse(this::readSparse, (from, length, bits, values, sums) -> sparse(from, length, keep, bits, values,
                    sums));
        }

        /** Σ|Δ| / Σ|kept Δ| over the tensor (1 when either is below mergekit's 1e-7). */
        private float l1Scale(int seed, int threshold) {
            double all = 0;
            double keptSum = 0;
            DeltaKernels.Keep keep = new DeltaKernels.Keep.Random(seed, threshold, 1f);
            byte[] bits = new byte[(int) Bits.bytesFor(chunk)];
            double[] unused = new double[4];
            for (long from = 0; from < n; from += chunk) {
                int length = load(from);
                for (int i = 0; i < length; i++) {
                    all += Math.abs(d[i]);
                }
                int kept = DeltaKernels.sparse(b, f, length, from, keep, planned.fineTune().dtype(), bits,
                        buffers.values, unused);
                for (int i = 0; i < kept; i++) {
                    keptSum += Math.abs(buffers.values[i]);
                }
            }
            return all >= 1e-7 && keptSum >= 1e-7 ? (float) (all / keptSum) : 1f;
        }

        /**
         * Selects the kept entries of a chunk whose base and fine-tune are read: sets their bits (cleared
         * beforehand), puts their values in index order at the front of {@code values}, adds the chunk's error
         * sums ({@link DeltaKernels#errors}) to {@code sums}, and returns how many it kept.
         */
        @FunctionalInterface
        private interface Selection {
            int select(long from, int length, byte[] bits, float[] values, double[] sums);
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
            if (k > 0 && n > chunk && magnitudeInOnePass(k)) {
                return;
            }
            DeltaKernels.Keep keep;
            if (k == 0) {
                keep = new DeltaKernels.Keep.Largest(Float.POSITIVE_INFINITY, new long[] {0});
            } else {
                Threshold threshold = threshold(k);
                keep = new DeltaKernels.Keep.Largest(threshold.value(),
                        new long[] {k - (threshold.atOrAbove() - threshold.tied())});
            }
            writeSparse(this::readSparse, (from, length, bits, values, sums) -> sparse(from, length, keep, bits, values,
                    sums));
        }

        /** The k-th largest |Δ|, with how many are at or above it and how many equal it, in {@link TopK}'s two passes. */
        private Threshold threshold(long k) {
            return kthLargest(k, counts -> {
                for (long from = 0; from < n; from += chunk) {
                    counts.add(d, load(from));
                }
            });
        }

        /** The k-th largest of values {@code round} gives each of {@link TopK}'s rounds, as a {@link Threshold}. */
        private static Threshold kthLargest(long k, Consumer<TopK.Counts> round) {
            TopK top = new TopK(k);
            while (!top.done()) {
                TopK.Counts counts = top.counts();
                round.accept(counts);
                top.end(List.of(counts));
            }
            return new Threshold(top.threshold(), top.atOrAbove(), top.tiedAt(0));
        }

        /**
         * The k largest |Δ| of the tensor in one read of it. A sample (a window of 8 Ki elements in every 256 Ki)
         * bounds the k-th largest from below; the pass holds the Δ of every entry at or above that bound (a few more
         * than k) and adds the errors as though all of them were kept. The exact threshold is then selected among
         * those alone, and the write keeps k of them as {@link #threshold}'s passes would (above it, then ties in
         * index order), correcting the errors of the rest. False, with nothing written
         * or counted, where the sample misled (fewer than k at or above the bound) or the held entries would not
         * fit the worker's share of the memory budget: the caller reads the tensor twice more instead.
         */
        private boolean magnitudeInOnePass(long k) throws IOException {
            MagnitudeBracket.Sample sample = buffers.sample;
            sample.clear();
            for (long from = 0; from < n; from += SAMPLE_STRIDE) {
                sample.add(d, load(from, (int) Math.min(Math.min(SAMPLE_WINDOW, chunk), n - from)));
            }
            MagnitudeBracket bracket = MagnitudeBracket.of(List.of(sample), k, n, false, SAMPLE_SLACK);
            long budget = options.memoryBytes() / 2 / options.threads() - Bits.bytesFor(n);
            long expected = bracket.estimateAtOrAboveLowest(n);
            if (n > Integer.MAX_VALUE || expected + expected / 4 > budget / Held.BYTES_PER_ENTRY) {
                return false;
            }
            Held held = buffers.held.reset(n, Math.max(k, expected + expected / 8), budget / Held.BYTES_PER_ENTRY);
            DeltaKernels.Keep candidates = new DeltaKernels.Keep.Largest(bracket.lowest(),
                    new long[] {Long.MAX_VALUE});
            byte[] bits = new byte[(int) Bits.bytesFor(chunk)];
            double[] sums = new double[4];
            for (long from = 0; from < n; from += chunk) {
                int length = readSparse(from, (int) Math.min(chunk, n - from));
                Arrays.fill(bits, (byte) 0);
                int count = sparse(from, length, candidates, bits, buffers.values, sums);
                if (!held.add(from, length, bits, buffers.values, count)) {
                    return false;
                }
            }
            if (held.size() < k) {
                return false;
            }
            account(sums);
            Threshold threshold = buffers.selection().kthLargest(k, held.delta, held.size());
            long[] tiesLeft = {k - (threshold.atOrAbove() - threshold.tied())};
            SparseOutput out = new SparseOutput();
            double[] correction = new double[4];
            for (long from = 0; from < n; from += chunk) {
                int length = (int) Math.min(chunk, n - from);
                int count = held.keep(from, length, threshold.value(), tiesLeft, bits, buffers.values,
                        correction);
                out.write(from, length, bits, buffers.values, count);
            }
            account(correction);
            out.finish();
            return true;
        }

        /**
         * Per row, the kPerRow largest |Δ|, ties by position: each row's entries sorted as primitive keys, the
         * larger |Δ| first (its bits inverted above) and the column below.
         */
        private void writeSparseRows(int columns, int kPerRow) throws IOException {
            long[] order = new long[columns];
            float[] stored = buffers.stored;
            writeSparse(this::read, (from, length, bits, values, sums) -> {
                DeltaKernels.difference(f, b, d, length);
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
                DeltaKernels.errors(b, f, d, stored, length, planned.fineTune().dtype(), sums);
                return kept;
            });
        }

        /** Reads elements [from, from + length) of base and fine-tune as a pass takes them; returns length. */
        @FunctionalInterface
        private interface ChunkReader {
            int read(long from, int length);
        }

        /** The write pass of a sparse tensor: each chunk read by {@code reader}, selected and written. */
        private void writeSparse(ChunkReader reader, Selection selection) throws IOException {
            SparseOutput out = new SparseOutput();
            float[] values = buffers.values;
            byte[] bits = new byte[(int) Bits.bytesFor(chunk)];
            for (long from = 0; from < n; from += chunk) {
                int length = reader.read(from, (int) Math.min(chunk, n - from));
                Arrays.fill(bits, (byte) 0);
                double[] sums = new double[4];
                int count = selection.select(from, length, bits, values, sums);
                account(sums);
                out.write(from, length, bits, values, count);
            }
            out.finish();
        }

        /** A sparse tensor written chunk by chunk, in order: the kept values, and their bitmap or indices. */
        private final class SparseOutput {
            private final boolean bitmap = planned.stored().get(1).name().endsWith(".bitmap");
            private final DType indexType = planned.stored().get(1).dtype();
            private final String valuesName = name + ".values";
            private final String positionsName = planned.stored().get(1).name();
            private final ByteBuffer indices;
            private final MemorySegment valueBytes;
            private long written;

            SparseOutput() {
                int mostKept = (int) Math.min(chunk, planned.kept());
                indices = bitmap ? null : buffers.indices(mostKept * (indexType.bits() / 8));
                valueBytes = buffers.bytes(mostKept * 4L);
            }

            /** The chunk of {@code length} elements at {@code from}: its bits, and its {@code count} kept values. */
            void write(long from, int length, byte[] bits, float[] values, int count) throws IOException {
                if (written + count > planned.kept()) {
                    throw new IllegalStateException("tensor '" + name + "' keeps more entries than planned");
                }
                Floats.narrow(values, count, valueBytes, DType.F32, 0);
                writer.write(valuesName, written * 4, valueBytes.asSlice(0, count * 4L));
                if (bitmap) {
                    writer.write(positionsName, from / 8, buffers.bits(bits, Bits.bytesFor(length)));
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

            void finish() {
                if (written != planned.kept()) {
                    throw new IllegalStateException("tensor '" + name + "' kept " + written + " entries, planned "
                            + planned.kept());
                }
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
                writer.write(signsName, from / 8, buffers.bits(bits, Bits.bytesFor(length)));
                done(length);
            }
            MemorySegment scale = MemorySegment.ofArray(new byte[alpha.length * 4]);
            Floats.narrow(alpha, alpha.length, scale, DType.F32, 0);
            writer.write(name + ".scale", 0, scale);
        }
    }
}
