package io.modelmerge.engine.exec;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.storage.safetensors.Tensor;
import io.modelmerge.storage.safetensors.TensorInfo;

/** A tensor served straight from a memory-mapped file, widened on read. */
record MappedSource(Tensor tensor) implements TensorSource {
    @Override
    public TensorInfo info() {
        return tensor.info();
    }

    @Override
    public void read(long from, int length, float[] dst) {
        Floats.widen(tensor.data(), tensor.dtype(), from, dst, length);
    }
}
