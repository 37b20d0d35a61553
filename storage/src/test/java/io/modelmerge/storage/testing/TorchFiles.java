package io.modelmerge.storage.testing;

import io.modelmerge.storage.safetensors.DType;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Writes checkpoints the way {@code torch.save(state_dict)} lays them out: a zip (entries stored, not deflated)
 * of {@code <name>/data.pkl}, {@code <name>/byteorder}, {@code <name>/version} and one raw storage per tensor
 * under {@code <name>/data/<key>}, the pickle emitting the opcodes torch's protocol-2 pickle does. Pickles can
 * also be written by hand ({@link Pickle}) for the malicious cases.
 */
public final class TorchFiles {
    private TorchFiles() {
    }

    /** One tensor: its name, dtype, shape and raw little-endian bytes. */
    public record Entry(String name, DType dtype, long[] shape, byte[] data) {
    }

    /** Writes {@code tensors}, each in a storage of its own, to {@code file}. */
    public static Path write(Path file, List<Entry> tensors) throws IOException {
        Pickle p = new Pickle().proto(2).global("collections", "OrderedDict").emptyTuple().reduce().mark();
        for (int i = 0; i < tensors.size(); i++) {
            Entry t = tensors.get(i);
            p.unicode(t.name());
            p.global("torch._utils", "_rebuild_tensor_v2").mark();
            p.mark().unicode("storage").global("torch", storageType(t.dtype())).unicode(Integer.toString(i))
                    .unicode("cpu").integer(t.data().length / (t.dtype().bits() / 8)).tuple().persistentId();
            p.integer(0).integers(t.shape()).integers(strides(t.shape())).bool(false);
            p.global("collections", "OrderedDict").emptyTuple().reduce();
            p.tuple().reduce();
        }
        p.setItems().stop();
        Map<String, byte[]> storages = new java.util.LinkedHashMap<>();
        for (int i = 0; i < tensors.size(); i++) {
            storages.put(Integer.toString(i), tensors.get(i).data());
        }
        return archive(file, "archive", p.bytes(), storages);
    }

    /** Writes a zip of {@code pickle} as {@code <name>/data.pkl} and the storages under {@code <name>/data/}. */
    public static Path archive(Path file, String name, byte[] pickle, Map<String, byte[]> storages) throws IOException {
        try (OutputStream out = Files.newOutputStream(file); ZipOutputStream zip = new ZipOutputStream(out)) {
            stored(zip, name + "/data.pkl", pickle);
            stored(zip, name + "/byteorder", "little".getBytes(StandardCharsets.US_ASCII));
            for (var storage : storages.entrySet()) {
                stored(zip, name + "/data/" + storage.getKey(), storage.getValue());
            }
            stored(zip, name + "/version", "3\n".getBytes(StandardCharsets.US_ASCII));
        }
        return file;
    }

    private static void stored(ZipOutputStream zip, String name, byte[] content) throws IOException {
        ZipEntry entry = new ZipEntry(name);
        entry.setMethod(ZipEntry.STORED);
        entry.setSize(content.length);
        CRC32 crc = new CRC32();
        crc.update(content);
        entry.setCrc(crc.getValue());
        zip.putNextEntry(entry);
        zip.write(content);
        zip.closeEntry();
    }

    private static String storageType(DType dtype) {
        return switch (dtype) {
            case F32 -> "FloatStorage";
            case F16 -> "HalfStorage";
            case BF16 -> "BFloat16Storage";
            case I64 -> "LongStorage";
            default -> throw new IllegalArgumentException(dtype.toString());
        };
    }

    private static long[] strides(long[] shape) {
        long[] stride = new long[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            stride[i] = s;
            s *= shape[i];
        }
        return stride;
    }

    /** A pickle written opcode by opcode. */
    public static final class Pickle {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        public Pickle op(int opcode) {
            out.write(opcode);
            return this;
        }

        /** Bytes as they are (ISO-8859-1: one byte a character). */
        public Pickle raw(String s) {
            out.writeBytes(s.getBytes(StandardCharsets.ISO_8859_1));
            return this;
        }

        public Pickle proto(int version) {
            return op(0x80).op(version);
        }

        public Pickle mark() {
            return op('(');
        }

        public Pickle global(String module, String name) {
            op('c');
            out.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
            return this;
        }

        public Pickle unicode(String s) {
            byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
            op('X');
            le(utf8.length, 4);
            out.writeBytes(utf8);
            return this;
        }

        public Pickle integer(long v) {
            op('J');
            le(v, 4);
            return this;
        }

        public Pickle integers(long[] values) {
            mark();
            for (long v : values) {
                integer(v);
            }
            return tuple();
        }

        public Pickle bool(boolean v) {
            return op(v ? 0x88 : 0x89);
        }

        public Pickle emptyTuple() {
            return op(')');
        }

        public Pickle tuple() {
            return op('t');
        }

        public Pickle reduce() {
            return op('R');
        }

        public Pickle persistentId() {
            return op('Q');
        }

        public Pickle setItems() {
            return op('u');
        }

        public Pickle stop() {
            return op('.');
        }

        private void le(long v, int bytes) {
            for (int i = 0; i < bytes; i++) {
                out.write((int) (v >>> (8 * i)) & 0xFF);
            }
        }

        public byte[] bytes() {
            return out.toByteArray();
        }
    }
}
