package io.modelmerge.engine.exec;

import io.modelmerge.engine.delta.Bits;
import io.modelmerge.engine.delta.DeltaManifest;
import io.modelmerge.engine.delta.DeltaManifest.TensorEntry;
import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.storage.blob.BlobCache;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.Located;
import io.modelmerge.storage.checkpoint.InvalidCheckpointException;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.safetensors.TensorInfo;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * A delta written by {@link DeltaExtraction}, opened for reading: its manifest, its tensors file and the exact
 * values beside it. {@link #reader} decodes one tensor's Δ̂ chunk by chunk, front to back.
 */
final class StoredDelta implements AutoCloseable {
    private final String location;
    private final BlobStore store;
    private final String dir;
    private final DeltaManifest manifest;
    private final SafetensorsFile weights;
    private final Optional<SafetensorsFile> exact;

    private StoredDelta(String location, BlobStore store, String dir, DeltaManifest manifest, SafetensorsFile weights,
                        Optional<SafetensorsFile> exact) {
        this.location = location;
        this.store = store;
        this.dir = dir;
        this.manifest = manifest;
        this.weights = weights;
        this.exact = exact;
    }

    static StoredDelta open(String location, MergeOptions options, BlobCache cache) throws IOException {
        Located located = options.storage().locate(location);
        BlobStore store = located.store();
        try {
            String dir = located.key().isEmpty() || located.key().endsWith("/") ? located.key() : located.key() + "/";
            if (store.head(dir + DeltaManifest.FILE_NAME).isEmpty()) {
                throw new InvalidCheckpointException(location + ": not a delta (no " + DeltaManifest.FILE_NAME + ")");
            }
            DeltaManifest manifest = DeltaManifest.parse(store.describe(dir + DeltaManifest.FILE_NAME),
                    store.readAllBytes(dir + DeltaManifest.FILE_NAME));
            SafetensorsFile weights = cache.open(store, dir + DeltaManifest.WEIGHTS, SafetensorsFile::open);
            Optional<SafetensorsFile> exact = store.head(dir + DeltaManifest.EXACT).isPresent()
                    ? Optional.of(cache.open(store, dir + DeltaManifest.EXACT, SafetensorsFile::open)) : Optional.empty();
            return new StoredDelta(location, store, dir, manifest, weights, exact);
        } catch (IOException | RuntimeException e) {
            store.close();
            throw e;
        }
    }

    String location() {
        return location;
    }

    DeltaManifest manifest() {
        return manifest;
    }

    BlobStore store() {
        return store;
    }

    String dir() {
        return dir;
    }

    /** The stored tensor {@code name}'s entry; tied names resolve to the tensor they share. */
    TensorEntry entry(String name) {
        String stored = manifest.tied().getOrDefault(name, name);
        return manifest.tensor(stored).orElseThrow(() -> new IllegalArgumentException(location
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

    /** Decodes one tensor's Δ̂ in increasing chunks. */
    final class Reader {
        private final TensorEntry entry;
        private long valueCursor;
        private long indexCursor;
        private long nextIndex = -1;
        private float[] scales;
        private final Map<Long, Float> exactValues;

        Reader(TensorEntry entry) {
            this.entry = entry;
            this.exactValues = entry.exact() > 0 ? loadExact(entry.name()) : Map.of();
        }

        TensorEntry entry() {
            return entry;
        }

        /** Adds λ·Δ̂[from, from + length) to {@code out} (sets it, for a WHOLE tensor). {@code from} only grows. */
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
         * For elements of this tensor whose exact fine-tune value the delta stores, that value: where a single delta
         * is applied whole (λ = 1), it replaces the rebuilt element, so the fine-tune comes back bit for bit.
         */
        void correct(long from, int length, float[] rebuilt) {
            if (exactValues.isEmpty()) {
                return;
            }
            for (int i = 0; i < length; i++) {
                Float v = exactValues.get(from + i);
                if (v != null) {
                    rebuilt[i] = v;
                }
            }
        }

        private void addSparse(long from, int length, float lambda, float[] out) {
            Optional<TensorInfo> bitmap = weights.header().tensor(entry.name() + ".bitmap");
            TensorInfo values = tensor(entry.name() + ".values");
            if (bitmap.isPresent()) {
                byte[] bits = bytes(bitmap.get(), from / 8, (int) Bits.bytesFor(length));
                int kept = 0;
                for (int i = 0; i < length; i++) {
                    kept += Bits.get(bits, i) ? 1 : 0;
                }
                float[] v = new float[kept];
                read(values, valueCursor, kept, v);
                int j = 0;
                for (int i = 0; i < length; i++) {
                    if (Bits.get(bits, i)) {
                        out[i] += lambda * v[j++];
                    }
                }
                valueCursor += kept;
                return;
            }
            TensorInfo indices = tensor(entry.name() + ".indices");
            int width = indices.dtype().bits() / 8;
            long count = indices.elementCount();
            while (indexCursor < count) {
                if (nextIndex < 0) {
                    ByteBuffer b = ByteBuffer.wrap(bytes(indices, indexCursor * width, width)).order(ByteOrder.LITTLE_ENDIAN);
                    nextIndex = width == 8 ? b.getLong() : b.getInt() & 0xFFFFFFFFL;
                }
                if (nextIndex >= from + length) {
                    break;
                }
                float[] v = new float[1];
                read(values, indexCursor, 1, v);
                out[(int) (nextIndex - from)] += lambda * v[0];
                indexCursor++;
                nextIndex = -1;
            }
        }

        private void addSigns(long from, int length, float lambda, float[] out) {
            if (scales == null) {
                TensorInfo scale = tensor(entry.name() + ".scale");
                scales = new float[(int) scale.elementCount()];
                read(scale, 0, scales.length, scales);
            }
            long columns = entry.shape().length == 0 ? 1 : entry.shape()[entry.shape().length - 1];
            byte[] bits = bytes(tensor(entry.name() + ".signs"), from / 8, (int) Bits.bytesFor(length));
            for (int i = 0; i < length; i++) {
                float alpha = scales.length == 1 ? scales[0] : scales[(int) ((from + i) / columns)];
                out[i] += lambda * (Bits.get(bits, i) ? alpha : -alpha);
            }
        }
    }

    private TensorInfo tensor(String name) {
        return weights.header().tensor(name).orElseThrow(() -> new UncheckedIOException(new InvalidCheckpointException(
                location + ": " + DeltaManifest.WEIGHTS + " has no tensor '" + name + "' that its manifest lists")));
    }

    /** Elements [from, from + length) of {@code info} widened to F32 into {@code dst}. */
    private void read(TensorInfo info, long from, int length, float[] dst) {
        Floats.widen(weights.tensor(info).data(), info.dtype(), from, dst, length);
    }

    private byte[] bytes(TensorInfo info, long offset, int length) {
        byte[] out = new byte[length];
        MemorySegment.copy(weights.tensor(info).data(), offset, MemorySegment.ofArray(out), 0, length);
        return out;
    }

    private Map<Long, Float> loadExact(String name) {
        SafetensorsFile file = exact.orElseThrow(() -> new UncheckedIOException(new InvalidCheckpointException(
                location + ": the manifest lists exact values for '" + name + "' but " + DeltaManifest.EXACT
                        + " is missing")));
        TensorInfo index = file.header().tensor(name + ".index").orElseThrow();
        TensorInfo value = file.header().tensor(name + ".value").orElseThrow();
        int count = (int) index.elementCount();
        ByteBuffer indices = file.tensor(index).data().asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        float[] values = new float[count];
        Floats.widen(file.tensor(value).data(), value.dtype(), 0, values, count);
        Map<Long, Float> out = new HashMap<>();
        for (int i = 0; i < count; i++) {
            out.put(indices.getLong(8 * i), values[i]);
        }
        return out;
    }

    @Override
    public void close() throws IOException {
        weights.close();
        exact.ifPresent(SafetensorsFile::close);
        store.close();
    }
}
