package io.modelmerge.storage.safetensors;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Streams a safetensors file to disk: the header goes first, from the {@link SafetensorsLayout}; tensor data
 * follows in chunks, written at their final position, in any order and from any thread, so no tensor and no
 * file is ever held whole in memory. The file appears under its name only on {@link #commit()}, after every
 * byte of every tensor was written; until then it lives beside it as {@code NAME.partial}, and closing without
 * committing deletes it.
 */
public final class SafetensorsWriter implements AutoCloseable {
    private final Path target;
    private final Path partial;
    private final SafetensorsLayout layout;
    private final FileChannel channel;
    private final AtomicLongArray written;
    private boolean committed;
    private boolean closed;

    private SafetensorsWriter(Path target, Path partial, SafetensorsLayout layout, FileChannel channel) {
        this.target = target;
        this.partial = partial;
        this.layout = layout;
        this.channel = channel;
        this.written = new AtomicLongArray(layout.tensors().size());
    }

    /** Starts writing {@code layout} to {@code target}; the header is written at once. */
    public static SafetensorsWriter create(Path target, SafetensorsLayout layout) throws IOException {
        Path partial = target.resolveSibling(target.getFileName() + ".partial");
        FileChannel channel = FileChannel.open(partial, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
        try {
            byte[] json = layout.headerJson();
            ByteBuffer head = ByteBuffer.allocate(SafetensorsHeader.LENGTH_PREFIX + json.length).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(json.length).put(json).flip();
            writeFully(channel, head, 0);
            return new SafetensorsWriter(target, partial, layout, channel);
        } catch (IOException | RuntimeException e) {
            channel.close();
            Files.deleteIfExists(partial);
            throw e;
        }
    }

    /** Writes a whole file in one call: every tensor of {@code tensors} with {@code metadata}. */
    public static void write(Path target, List<Tensor> tensors, java.util.Map<String, String> metadata) throws IOException {
        List<TensorSpec> specs = new ArrayList<>(tensors.size());
        for (Tensor t : tensors) {
            specs.add(TensorSpec.of(t.info()));
        }
        try (SafetensorsWriter writer = create(target, SafetensorsLayout.of(specs, metadata))) {
            for (Tensor t : tensors) {
                writer.write(t.name(), 0, t.data());
            }
            writer.commit();
        }
    }

    public SafetensorsLayout layout() {
        return layout;
    }

    /**
     * Writes {@code chunk} into tensor {@code name} at byte {@code offset} of the tensor's data. Chunks of one
     * tensor must not overlap. Thread-safe.
     */
    public void write(String name, long offset, MemorySegment chunk) throws IOException {
        int index = layout.indexOf(name);
        TensorInfo info = layout.tensors().get(index);
        long length = chunk.byteSize();
        if (offset < 0 || offset + length > info.byteLength()) {
            throw new IllegalArgumentException("Chunk [" + offset + ", " + (offset + length) + ") is outside tensor '"
                    + name + "' of " + info.byteLength() + " bytes");
        }
        writeFully(channel, chunk.asByteBuffer(), layout.dataStart() + info.begin() + offset);
        written.addAndGet(index, length);
    }

    private static void writeFully(FileChannel channel, ByteBuffer buffer, long position) throws IOException {
        long at = position;
        while (buffer.hasRemaining()) {
            at += channel.write(buffer, at);
        }
    }

    /**
     * Pushes what was written so far to disk without committing, so the final {@link #commit()} has little
     * left to sync; safe to call from another thread while chunks are being written.
     */
    public void flush() throws IOException {
        if (channel.isOpen()) {
            channel.force(false);
        }
    }

    /**
     * Checks that every tensor was written in full, flushes the file to disk and moves it to its name.
     *
     * @throws IllegalStateException naming the first tensor that is incomplete
     */
    public void commit() throws IOException {
        for (int i = 0; i < written.length(); i++) {
            TensorInfo info = layout.tensors().get(i);
            if (written.get(i) != info.byteLength()) {
                throw new IllegalStateException(target + ": tensor '" + info.name() + "' has " + written.get(i)
                        + " of its " + info.byteLength() + " bytes written");
            }
        }
        channel.force(true);
        channel.close();
        Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        committed = true;
    }

    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        if (!committed) {
            channel.close();
            Files.deleteIfExists(partial);
        }
    }
}
