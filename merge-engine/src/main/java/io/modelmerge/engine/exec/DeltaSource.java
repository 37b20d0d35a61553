package io.modelmerge.engine.exec;

import io.modelmerge.engine.delta.DeltaManifest;
import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.storage.safetensors.TensorInfo;

/**
 * A tensor of a stored delta read as the fine-tune's: base + Δ̂, rounded to the fine-tune's dtype as
 * {@code apply} writes it, a dense delta's exact values put in; a tensor stored whole is read as it is.
 *
 * @param base the base's tensor (null for a tensor stored whole)
 */
record DeltaSource(TensorInfo info, TensorSource base, StoredDelta.Reader delta) implements TensorSource {

    @Override
    public void read(long from, int length, float[] dst) {
        if (delta.entry().encoding() == DeltaManifest.Encoding.WHOLE) {
            delta.addTo(from, length, 1f, dst);
            return;
        }
        base.read(from, length, dst);
        delta.addTo(from, length, 1f, dst);
        Floats.round(dst, length, info.dtype());
        delta.correct(from, length, dst);
    }
}
