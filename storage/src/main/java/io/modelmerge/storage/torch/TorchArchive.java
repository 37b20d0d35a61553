package io.modelmerge.storage.torch;

import io.modelmerge.storage.checkpoint.InvalidCheckpointException;
import io.modelmerge.storage.safetensors.SafetensorsLayout;
import io.modelmerge.storage.safetensors.SafetensorsWriter;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * A checkpoint {@code torch.save} wrote (PyTorch 1.6 and later): a zip holding {@code <name>/data.pkl}, the
 * pickled state dict, and {@code <name>/data/<key>}, one raw little-endian storage per key. The pickle is read
 * by {@link TorchPickle}, which runs nothing; storages are streamed from the zip.
 */
public final class TorchArchive implements AutoCloseable {
    /** A pickle larger than this is no state dict's: refused before it is read into memory. */
    private static final long MAX_PICKLE_BYTES = 256L << 20;
    private static final byte[] ZIP_MAGIC = {'P', 'K', 3, 4};

    private final String source;
    private final ZipFile zip;
    private final String prefix;
    private final List<TorchTensor> tensors;

    private TorchArchive(String source, ZipFile zip, String prefix, List<TorchTensor> tensors) {
        this.source = source;
        this.zip = zip;
        this.prefix = prefix;
        this.tensors = tensors;
    }

    /** Opens {@code file} and reads its pickle; {@code source} names it in messages. */
    public static TorchArchive open(Path file, String source) throws IOException {
        byte[] magic = new byte[4];
        try (InputStream in = Files.newInputStream(file)) {
            if (in.readNBytes(magic, 0, 4) < 4 || !Arrays.equals(magic, ZIP_MAGIC)) {
                throw new InvalidCheckpointException(source + ": not a zip archive; a checkpoint torch.save wrote before"
                        + " PyTorch 1.6 (or any other pickle file) is not read; save it again with a newer PyTorch or as"
                        + " safetensors");
            }
        }
        ZipFile zip;
        try {
            zip = new ZipFile(file.toFile());
        } catch (ZipException e) {
            throw new InvalidCheckpointException(source + ": not a readable zip archive (" + e.getMessage() + ")");
        }
        try {
            ZipEntry pickle = zip.stream().filter(e -> e.getName().endsWith("/data.pkl")
                    && e.getName().indexOf('/') == e.getName().length() - "/data.pkl".length()).findFirst()
                    .orElseThrow(() -> new InvalidCheckpointException(source + ": a zip without <name>/data.pkl is not"
                            + " a checkpoint torch.save wrote"));
            String prefix = pickle.getName().substring(0, pickle.getName().length() - "data.pkl".length());
            ZipEntry order = zip.getEntry(prefix + "byteorder");
            if (order != null) {
                String byteOrder = new String(read(zip, order, 16), StandardCharsets.US_ASCII).strip();
                if (!byteOrder.equals("little")) {
                    throw new InvalidCheckpointException(source + ": storages are " + byteOrder + "-endian; only"
                            + " little-endian checkpoints are read");
                }
            }
            if (pickle.getSize() > MAX_PICKLE_BYTES) {
                throw new InvalidCheckpointException(source + ": data.pkl is " + pickle.getSize() + " bytes, more than"
                        + " a state dict's pickle ever is");
            }
            List<TorchTensor> tensors = TorchPickle.read(source + " (" + pickle.getName() + ")",
                    read(zip, pickle, MAX_PICKLE_BYTES));
            return new TorchArchive(source, zip, prefix, tensors);
        } catch (IOException | RuntimeException e) {
            zip.close();
            throw e;
        }
    }

    private static byte[] read(ZipFile zip, ZipEntry entry, long limit) throws IOException {
        try (InputStream in = zip.getInputStream(entry)) {
            byte[] bytes = in.readNBytes((int) Math.min(limit, Integer.MAX_VALUE - 8));
            if (in.read() >= 0) {
                throw new ZipException(entry.getName() + " is larger than " + limit + " bytes");
            }
            return bytes;
        }
    }

    /** The state dict's tensors, in the order the pickle lists them. */
    public List<TorchTensor> tensors() {
        return tensors;
    }

    /**
     * Writes the state dict as a safetensors file at {@code target} (atomically, as {@link SafetensorsWriter}
     * does), each tensor streamed from its storage record in chunks.
     */
    public void writeSafetensors(Path target) throws IOException {
        List<TensorSpec> specs = new ArrayList<>();
        for (TorchTensor t : tensors) {
            specs.add(new TensorSpec(t.name(), t.dtype(), t.shape()));
        }
        byte[] chunk = new byte[1 << 20];
        try (SafetensorsWriter writer = SafetensorsWriter.create(target, SafetensorsLayout.of(specs, Map.of("format", "pt")))) {
            for (TorchTensor t : tensors) {
                try (InputStream in = data(t)) {
                    long done = 0;
                    while (done < t.byteLength()) {
                        int n = in.readNBytes(chunk, 0, (int) Math.min(chunk.length, t.byteLength() - done));
                        if (n == 0) {
                            throw new InvalidCheckpointException(source + ": storage '" + t.storageKey() + "' ends "
                                    + "before tensor '" + t.name() + "' does");
                        }
                        writer.write(t.name(), done, MemorySegment.ofArray(chunk).asSlice(0, n));
                        done += n;
                    }
                }
            }
            writer.commit();
        }
    }

    /** The storage record of {@code tensor}, positioned at its first byte. */
    private InputStream data(TorchTensor tensor) throws IOException {
        if (!tensor.contiguous()) {
            throw new InvalidCheckpointException(source + ": tensor '" + tensor.name() + "' is a strided view (size "
                    + Arrays.toString(tensor.shape()) + ", stride " + Arrays.toString(tensor.stride())
                    + "); only contiguous tensors are read");
        }
        ZipEntry entry = zip.getEntry(prefix + "data/" + tensor.storageKey());
        if (entry == null) {
            throw new InvalidCheckpointException(source + ": tensor '" + tensor.name() + "' is in storage '"
                    + tensor.storageKey() + "', which the archive does not hold");
        }
        long start = tensor.storageOffset() * (tensor.dtype().bits() / 8);
        if (entry.getSize() >= 0 && start + tensor.byteLength() > entry.getSize()) {
            throw new InvalidCheckpointException(source + ": tensor '" + tensor.name() + "' needs bytes [" + start + ", "
                    + (start + tensor.byteLength()) + ") of storage '" + tensor.storageKey() + "', which has "
                    + entry.getSize());
        }
        InputStream in = zip.getInputStream(entry);
        try {
            in.skipNBytes(start);
        } catch (IOException e) {
            in.close();
            throw new InvalidCheckpointException(source + ": storage '" + tensor.storageKey() + "' ends before tensor '"
                    + tensor.name() + "' starts");
        }
        return in;
    }

    @Override
    public void close() throws IOException {
        zip.close();
    }
}
