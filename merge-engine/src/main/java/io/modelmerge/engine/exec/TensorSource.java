package io.modelmerge.engine.exec;

import io.modelmerge.storage.safetensors.TensorInfo;

/** One input tensor, readable as F32 in runs of elements. */
interface TensorSource {
    TensorInfo info();

    /** Reads elements [from, from + length) into {@code dst[0..length)}. Thread-safe. */
    void read(long from, int length, float[] dst);
}
