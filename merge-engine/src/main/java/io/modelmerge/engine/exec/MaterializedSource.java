package io.modelmerge.engine.exec;

import io.modelmerge.storage.safetensors.TensorInfo;

/** A tensor computed in memory (a base weight with a LoRA delta applied), held as F32. */
record MaterializedSource(TensorInfo info, float[] values) implements TensorSource {
    @Override
    public void read(long from, int length, float[] dst) {
        System.arraycopy(values, Math.toIntExact(from), dst, 0, length);
    }
}
