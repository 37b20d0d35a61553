package io.modelmerge.engine.exec;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.TensorInfo;

/** An input read as mergekit loads it under {@code compute_dtype: recipe}: converted to the compute dtype. */
record RoundedSource(TensorSource stored, DType dtype) implements TensorSource {

    @Override
    public TensorInfo info() {
        return stored.info();
    }

    @Override
    public void read(long from, int length, float[] dst) {
        stored.read(from, length, dst);
        Floats.round(dst, length, dtype);
    }
}
