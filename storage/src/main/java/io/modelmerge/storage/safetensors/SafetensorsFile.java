package io.modelmerge.storage.safetensors;

import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;

/**
 * A safetensors file mapped into memory. Opening reads and validates the header only; tensor data is served
 * as zero-copy, read-only views of the mapping, valid until {@link #close()}. Files of any size (beyond 4 GiB)
 * map as one segment. Safe to share between threads.
 */
public final class SafetensorsFile implements AutoCloseable {
    private final Path path;
    private final SafetensorsHeader header;
    private final Arena arena;
    private final MemorySegment mapping;
    private final FileChannel channel;

    private SafetensorsFile(Path path, SafetensorsHeader header, Arena arena, MemorySegment mapping, FileChannel channel) {
        this.path = path;
        this.header = header;
        this.arena = arena;
        this.mapping = mapping;
        this.channel = channel;
    }

    /** Opens and validates {@code path}; a file that breaks the format throws {@link SafetensorsFormatException}. */
    public static SafetensorsFile open(Path path) throws IOException {
        String source = path.toString();
        FileChannel channel = FileChannel.open(path, StandardOpenOption.READ);
        try {
            long fileSize = channel.size();
            byte[] prefix = readFully(channel, 0, (int) Math.min(fileSize, SafetensorsHeader.LENGTH_PREFIX));
            long headerSize = SafetensorsHeaderParser.headerSize(source, prefix, fileSize);
            byte[] json = readFully(channel, SafetensorsHeader.LENGTH_PREFIX, (int) headerSize);
            SafetensorsHeader header = SafetensorsHeaderParser.parse(source, json, fileSize);
            Arena arena = Arena.ofShared();
            try {
                MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, fileSize, arena);
                return new SafetensorsFile(path, header, arena, mapping, channel);
            } catch (IOException | RuntimeException e) {
                arena.close();
                throw e;
            }
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    private static byte[] readFully(FileChannel channel, long position, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, position + buffer.position()) < 0) {
                throw new EOFException("Unexpected end of file at " + (position + buffer.position()));
            }
        }
        return buffer.array();
    }

    public Path path() {
        return path;
    }

    public SafetensorsHeader header() {
        return header;
    }

    /** Tensors in data order. */
    public List<TensorInfo> tensors() {
        return header.tensors();
    }

    public Map<String, String> metadata() {
        return header.metadata();
    }

    /** The tensor named {@code name}, a read-only view of the mapped file. */
    public Tensor tensor(String name) {
        TensorInfo info = header.tensor(name).orElseThrow(() ->
                new NoSuchElementException(path + ": no tensor named '" + name + "'"));
        return tensor(info);
    }

    /** The data of {@code info}, which must come from this file's header. */
    public Tensor tensor(TensorInfo info) {
        MemorySegment data = mapping.asSlice(header.dataStart() + info.begin(), info.byteLength()).asReadOnly();
        return new Tensor(info, data);
    }

    /**
     * Copies bytes [offset, offset + dst.remaining()) of tensor {@code info}'s data into {@code dst} with
     * positional reads. Streaming a large file this way costs a copy from the page cache but no page faults,
     * which is cheaper than touching a mapping page by page. Thread-safe.
     */
    public void read(TensorInfo info, long offset, ByteBuffer dst) throws IOException {
        if (offset < 0 || offset + dst.remaining() > info.byteLength()) {
            throw new IllegalArgumentException("Read [" + offset + ", " + (offset + dst.remaining()) + ") is outside tensor '"
                    + info.name() + "' of " + info.byteLength() + " bytes");
        }
        long position = header.dataStart() + info.begin() + offset;
        while (dst.hasRemaining()) {
            int n = channel.read(dst, position);
            if (n < 0) {
                throw new EOFException(path + ": ends before tensor '" + info.name() + "' does");
            }
            position += n;
        }
    }

    @Override
    public void close() {
        arena.close();
        try {
            channel.close();
        } catch (IOException ignored) {
            // nothing was written through this channel; closing it cannot lose data
        }
    }
}
