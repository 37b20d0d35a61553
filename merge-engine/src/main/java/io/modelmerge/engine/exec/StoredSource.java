package io.modelmerge.engine.exec;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.safetensors.TensorInfo;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/**
 * A tensor of a safetensors file, read block by block with positional reads into a per-thread buffer and
 * widened from there (measured faster than faulting in a multi-GB mapping page by page).
 */
record StoredSource(SafetensorsFile file, TensorInfo info) implements TensorSource {
    private static final ThreadLocal<ByteBuffer> BUFFER = ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(0));

    /** Copies the stored bytes of elements [from, from + length) into {@code dst}, from its start, and flips it. */
    void readBytes(long from, int length, ByteBuffer dst) {
        int elementBytes = info.dtype().bits() / 8;
        dst.clear().limit(length * elementBytes);
        try {
            file.read(info, from * elementBytes, dst);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        dst.flip();
    }

    @Override
    public void read(long from, int length, float[] dst) {
        int bytes = length * (info.dtype().bits() / 8);
        ByteBuffer buffer = BUFFER.get();
        if (buffer.capacity() < bytes) {
            buffer = ByteBuffer.allocateDirect(Math.max(bytes, 1 << 17));
            BUFFER.set(buffer);
        }
        readBytes(from, length, buffer);
        Floats.widen(MemorySegment.ofBuffer(buffer), info.dtype(), 0, dst, length);
    }
}
