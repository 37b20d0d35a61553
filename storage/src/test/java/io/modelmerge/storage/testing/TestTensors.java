package io.modelmerge.storage.testing;

import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.Tensor;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Reading small tensors whole, for assertions. */
public final class TestTensors {
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private TestTensors() {
    }

    /** The elements of an F32 tensor. */
    public static float[] floats(Tensor tensor) {
        if (tensor.dtype() != DType.F32) {
            throw new IllegalArgumentException("tensor " + tensor.name() + " is " + tensor.dtype() + ", not F32");
        }
        return tensor.data().toArray(F32_LE);
    }
}
