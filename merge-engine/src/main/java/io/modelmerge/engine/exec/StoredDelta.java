package io.modelmerge.engine.exec;

import io.modelmerge.engine.delta.Bits;
import io.modelmerge.engine.delta.DeltaManifest.TensorEntry;
import io.modelmerge.engine.delta.DeltaManifest;
import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.storage.blob.BlobCache;
import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.checkpoint.CheckpointFormat;
import io.modelmerge.storage.checkpoint.InvalidCheckpointException;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.safetensors.TensorInfo;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Optional;

/**
 * A delta written by {@link DeltaExtraction}, opened for reading: its manifest, its tensors file and the exact
 * values beside it. {@link #reader} decodes any range of one tensor's Δ̂.
 */
final class StoredDelta implements AutoCloseable {
    private final Checkpoint checkpoint;
    private final DeltaManifest manifest;
    private final SafetensorsFile weights;
    private final Optional<SafetensorsFile> exact;

    private StoredDelta(Checkpoint checkpoint, DeltaManifest manifest, SafetensorsFile weights,
                        Optional<SafetensorsFile> exact) {
        this.checkpoint = checkpoint;
        this.manifest = manifest;
        this.weights = weights;
        this.exact = exact;
    }

    /**
     * The delta {@code checkpoint} holds (format {@link CheckpointFormat#DELTA}), its files mapped through
     * {@code cache}. Closing it closes those files; the checkpoint's store stays its opener's.
     */
    static StoredDelta open(Checkpoint checkpoint, BlobCache cache) throws IOException {
        if (checkpoint.format() != CheckpointFormat.DELTA) {
            throw new InvalidCheckpointException(checkpoint.location() + ": not a delta (no " + DeltaManifest.FILE_NAME
                    + ")");
        }
        BlobStore store = checkpoint.store();
        BlobInfo manifestFile = file(checkpoint.layoutFiles(), DeltaManifest.FILE_NAME).orElseThrow();
        DeltaManifest manifest = DeltaManifest.parse(store.describe(manifestFile.key()), store.readAllBytes(manifestFile.key()));
        List<BlobInfo> tensorFiles = checkpoint.files().stream().map(Checkpoint.ShardFile::blob).toList();
        SafetensorsFile weights = cache.open(store, file(tensorFiles, DeltaManifest.WEIGHTS).orElseThrow().key(),
                SafetensorsFile::open);
        try {
            Optional<BlobInfo> exactFile = file(tensorFiles, DeltaManifest.EXACT);
            Optional<SafetensorsFile> exact = exactFile.isPresent()
                    ? Optional.of(cache.open(store, exactFile.get().key(), SafetensorsFile::open)) : Optional.empty();
            return new StoredDelta(checkpoint, manifest, weights, exact);
        } catch (IOException | RuntimeException e) {
            weights.close();
            throw e;
        }
    }

    private static Optional<BlobInfo> file(List<BlobInfo> files, String name) {
        return files.stream().filter(f -> f.fileName().equals(name)).findFirst();
    }

    String location() {
        return checkpoint.location();
    }

    /** The delta's files: its manifest and tensors, and the fine-tune's tag-alongs. */
    Checkpoint checkpoint() {
        return checkpoint;
    }

    DeltaManifest manifest() {
        return manifest;
    }

    /** The stored tensor {@code name}'s entry; tied names resolve to the tensor they share. */
    TensorEntry entry(String name) {
        String stored = manifest.tied().getOrDefault(name, name);
        return manifest.tensor(stored).orElseThrow(() -> new IllegalArgumentException(location()
                + ": the delta has no tensor '" + name + "'"));
    }

    /** The raw bytes of a tensor stored whole (integer buffers and the like are copied as they are). */
    MemorySegment raw(String name) {
        return weights.tensor(tensor(entry(name).name())).data();
    }

    /** A front-to-back decoder of tensor {@code name}'s Δ̂ (or, for a WHOLE tensor, its values). */
    Reader reader(String name) {
        return new Reader(entry(name));
    }

    /**
     * Decodes one tensor's Δ̂ over any range, from any thread: a sparse bitmap's values are found through the count
     * of kept entries before each run of {@link #RUN} elements (counted once), an index list's by binary search.
     */
    final class Reader {
        private static final int RUN = 1 << 16;
        private final TensorEntry entry;
        private final long[] keptBefore;
        private final float[] scales;
        private final long[] exactIndex;
        private final float[] exactValue;

        Reader(TensorEntry entry) {
            this.entry = entry;
            Optional<TensorInfo> bitmap = entry.encoding() == DeltaManifest.Encoding.SPARSE
                    ? weights.header().tensor(entry.name() + ".bitmap") : Optional.empty();
            this.keptBefore = bitmap.map(this::keptBefore).orElse(null);
            if (entry.encoding() == DeltaManifest.Encoding.SIGNS) {
                TensorInfo scale = tensor(entry.name() + ".scale");
                scales = new float[(int) scale.elementCount()];
                read(scale, 0, scales.length, scales);
            } else {
                scales = null;
            }
            if (entry.exact() > 0) {
                SafetensorsFile file = exact.orElseThrow(() -> new UncheckedIOException(new InvalidCheckpointException(
                        location() + ": the manifest lists exact values for '" + entry.name() + "' but "
                                + DeltaManifest.EXACT + " is missing")));
                TensorInfo index = file.header().tensor(entry.name() + ".index").orElseThrow();
                TensorInfo value = file.header().tensor(entry.name() + ".value").orElseThrow();
                int count = (int) index.elementCount();
                exactIndex = new long[count];
                file.tensor(index).data().asByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(exactIndex);
                exactValue = new float[count];
                Floats.widen(file.tensor(value).data(), value.dtype(), 0, exactValue, count);
            } else {
                exactIndex = new long[0];
                exactValue = new float[0];
            }
        }

        TensorEntry entry() {
            return entry;
        }

        private long[] keptBefore(TensorInfo bitmap) {
            long n = entry.elements();
            long[] before = new long[(int) ((n + RUN - 1) / RUN) + 1];
            MemorySegment bits = weights.tensor(bitmap).data();
            long kept = 0;
            for (int r = 0; r < before.length - 1; r++) {
                before[r] = kept;
                long end = Math.min(n, (long) (r + 1) * RUN);
                kept += countBits(bits, (long) r * RUN, end);
            }
            before[before.length - 1] = kept;
            return before;
        }

        /** Adds λ·Δ̂[from, from + length) to {@code out} (sets it, for a WHOLE tensor). */
        void addTo(long from, int length, float lambda, float[] out) {
            switch (entry.encoding()) {
                case WHOLE -> read(tensor(entry.name()), from, length, out);
                case DENSE -> {
                    float[] d = new float[length];
                    read(tensor(entry.name()), from, length, d);
                    for (int i = 0; i < length; i++) {
                        out[i] += lambda * d[i];
                    }
                }
                case SPARSE -> addSparse(from, length, lambda, out);
                case SIGNS -> addSigns(from, length, lambda, out);
            }
        }

        /**
         * Where the delta stores the exact fine-tune value of an element of [from, from + length), puts it in
         * {@code rebuilt}: applied whole (λ = 1) to its base, a dense delta gives the fine-tune back bit for bit.
         */
        void correct(long from, int length, float[] rebuilt) {
            int i = java.util.Arrays.binarySearch(exactIndex, from);
            for (i = i < 0 ? -i - 1 : i; i < exactIndex.length && exactIndex[i] < from + length; i++) {
                rebuilt[(int) (exactIndex[i] - from)] = exactValue[i];
            }
        }

        private void addSparse(long from, int length, float lambda, float[] out) {
            TensorInfo values = tensor(entry.name() + ".values");
            if (keptBefore != null) {
                MemorySegment bits = weights.tensor(tensor(entry.name() + ".bitmap")).data();
                long run = from / RUN;
                long first = keptBefore[(int) run] + countBits(bits, run * RUN, from);
                long kept = countBits(bits, from, from + length);
                float[] v = new float[(int) kept];
                read(values, first, v.length, v);
                int j = 0;
                for (int i = 0; i < length; i++) {
                    if (Bits.get(bits, from + i)) {
                        out[i] += lambda * v[j++];
                    }
                }
                return;
            }
            TensorInfo indices = tensor(entry.name() + ".indices");
            MemorySegment index = weights.tensor(indices).data();
            boolean wide = indices.dtype() == DType.I64;
            long count = indices.elementCount();
            long lo = 0;
            long hi = count;
            while (lo < hi) { // the first stored index at or after from
                long mid = (lo + hi) >>> 1;
                if (indexAt(index, wide, mid) < from) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            long end = lo;
            while (end < count && indexAt(index, wide, end) < from + length) {
                end++;
            }
            float[] v = new float[(int) (end - lo)];
            read(values, lo, v.length, v);
            for (long k = lo; k < end; k++) {
                out[(int) (indexAt(index, wide, k) - from)] += lambda * v[(int) (k - lo)];
            }
        }

        private void addSigns(long from, int length, float lambda, float[] out) {
            long columns = entry.shape().length == 0 ? 1 : entry.shape()[entry.shape().length - 1];
            MemorySegment bits = weights.tensor(tensor(entry.name() + ".signs")).data();
            for (int i = 0; i < length; i++) {
                float alpha = scales.length == 1 ? scales[0] : scales[(int) ((from + i) / columns)];
                out[i] += lambda * (Bits.get(bits, from + i) ? alpha : -alpha);
            }
        }
    }

    private static long indexAt(MemorySegment index, boolean wide, long k) {
        return wide ? index.get(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 8 * k)
                : index.get(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 4 * k)
                & 0xFFFFFFFFL;
    }

    /** Set bits among bits [from, to) of a packed bitmap. */
    private static long countBits(MemorySegment bits, long from, long to) {
        long count = 0;
        long i = from;
        for (; i < to && (i & 7) != 0; i++) {
            count += Bits.get(bits, i) ? 1 : 0;
        }
        for (; i + 8 <= to; i += 8) {
            count += Integer.bitCount(bits.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i >>> 3) & 0xFF);
        }
        for (; i < to; i++) {
            count += Bits.get(bits, i) ? 1 : 0;
        }
        return count;
    }

    private TensorInfo tensor(String name) {
        return weights.header().tensor(name).orElseThrow(() -> new UncheckedIOException(new InvalidCheckpointException(
                location() + ": " + DeltaManifest.WEIGHTS + " has no tensor '" + name + "' that its manifest lists")));
    }

    /** Elements [from, from + length) of {@code info} widened to F32 into {@code dst}. */
    private void read(TensorInfo info, long from, int length, float[] dst) {
        Floats.widen(weights.tensor(info).data(), info.dtype(), from, dst, length);
    }

    @Override
    public void close() {
        weights.close();
        exact.ifPresent(SafetensorsFile::close);
    }
}
