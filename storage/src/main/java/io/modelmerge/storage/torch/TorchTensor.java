package io.modelmerge.storage.torch;

import io.modelmerge.storage.safetensors.DType;
import java.util.Arrays;

/**
 * One tensor of a PyTorch checkpoint as its pickle describes it: a view of {@code shape} and {@code stride}
 * (in elements) starting {@code storageOffset} elements into the storage record {@code storageKey}.
 */
public record TorchTensor(String name, DType dtype, long[] shape, long[] stride, String storageKey, long storageOffset) {

    public TorchTensor {
        shape = shape.clone();
        stride = stride.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long elementCount() {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public long byteLength() {
        return elementCount() * (dtype.bits() / 8);
    }

    /** Whether its elements lie in row-major order, one after another (the strides of a contiguous tensor). */
    public boolean contiguous() {
        long expected = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] != 1 && stride[i] != expected) {
                return false;
            }
            expected *= shape[i];
        }
        return true;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TorchTensor t && name.equals(t.name) && dtype == t.dtype && Arrays.equals(shape, t.shape)
                && Arrays.equals(stride, t.stride) && storageKey.equals(t.storageKey) && storageOffset == t.storageOffset;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape) + " @" + storageKey + "+" + storageOffset;
    }
}
