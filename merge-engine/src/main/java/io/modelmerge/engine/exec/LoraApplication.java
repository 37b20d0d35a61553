package io.modelmerge.engine.exec;

import io.modelmerge.engine.compute.ComputeBackend;
import io.modelmerge.engine.compute.Matrix;
import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.storage.checkpoint.LoraModule;
import io.modelmerge.storage.checkpoint.MappedCheckpoint;
import io.modelmerge.storage.safetensors.Tensor;

/**
 * W' = W + scale · B·A for one LoRA module, as PEFT merges it (merge_and_unload): B·A is [out, in] and is
 * transposed onto weights stored [in, out] ({@code fan_in_fan_out}, GPT-2's Conv1D). The product runs on the
 * merge's {@link ComputeBackend}.
 */
final class LoraApplication {
    private LoraApplication() {
    }

    static MaterializedSource apply(Tensor base, MappedCheckpoint adapter, LoraModule module, ComputeBackend backend) {
        float[] values = Floats.widen(base);
        int rank = module.rank();
        Matrix a = new Matrix(rank, (int) module.a().dim(1), Floats.widen(adapter.tensor(module.a().name())));
        Matrix b = new Matrix((int) module.b().dim(0), rank, Floats.widen(adapter.tensor(module.b().name())));
        Matrix delta = backend.multiply(b, a);
        if (module.fanInFanOut()) {
            delta = delta.transpose();
        }
        backend.addScaled(values, (float) module.scaling(), delta.values(), values.length);
        return new MaterializedSource(base.info(), values);
    }
}
