package io.modelmerge.storage.safetensors;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/** A tensor's header entry with its raw little-endian bytes. */
public record Tensor(TensorInfo info, MemorySegment data) {

    public Tensor {
        Objects.requireNonNull(info, "info");
        Objects.requireNonNull(data, "data");
        if (data.byteSize() != info.byteLength()) {
            throw new IllegalArgumentException("Tensor " + info.name() + " has " + data.byteSize()
                    + " bytes of data, its header says " + info.byteLength());
        }
    }

    public String name() {
        return info.name();
    }

    public DType dtype() {
        return info.dtype();
    }
}
