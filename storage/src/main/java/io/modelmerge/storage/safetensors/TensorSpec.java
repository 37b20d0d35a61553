package io.modelmerge.storage.safetensors;

import java.util.Arrays;
import java.util.Objects;

/** A tensor planned for writing: its name, dtype and shape, before it has a place in a file. */
public record TensorSpec(String name, DType dtype, long[] shape) {

    public TensorSpec {
        shape = checked(name, dtype, shape);
        dtype.byteLength(TensorInfo.elementCount(shape));
    }

    /** A defensive copy of {@code shape}, after checking that name and dtype are present and no dimension is negative. */
    static long[] checked(String name, DType dtype, long[] shape) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        long[] copy = shape.clone();
        for (long dim : copy) {
            if (dim < 0) {
                throw new IllegalArgumentException("Tensor " + name + " has a negative dimension: " + Arrays.toString(copy));
            }
        }
        return copy;
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long byteLength() {
        return dtype.byteLength(TensorInfo.elementCount(shape));
    }

    /** The spec of an existing tensor, to write it again. */
    public static TensorSpec of(TensorInfo info) {
        return new TensorSpec(info.name(), info.dtype(), info.shape());
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorSpec t && name.equals(t.name) && dtype == t.dtype && Arrays.equals(shape, t.shape);
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape));
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }
}
