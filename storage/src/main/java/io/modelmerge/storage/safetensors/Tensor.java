package io.modelmerge.storage.safetensors;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/** A tensor's header entry with its raw little-endian bytes. */
public record Tensor(TensorInfo info, MemorySegment data) {

    /** Little-endian float, the byte order of the format, for reading F32 data element by element. */
    public static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

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

    /** A copy of an F32 tensor's elements. Small tensors and tests only: the merge path works on segments. */
    public float[] toFloatArray() {
        if (info.dtype() != DType.F32) {
            throw new IllegalStateException("Tensor " + info.name() + " is " + info.dtype() + ", not F32");
        }
        float[] values = new float[Math.toIntExact(info.elementCount())];
        MemorySegment.copy(data, F32_LE, 0, values, 0, values.length);
        return values;
    }
}
