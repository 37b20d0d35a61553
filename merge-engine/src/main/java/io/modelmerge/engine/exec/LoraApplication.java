package io.modelmerge.engine.exec;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.storage.checkpoint.LoraModule;
import io.modelmerge.storage.checkpoint.MappedCheckpoint;
import io.modelmerge.storage.safetensors.Tensor;
import io.modelmerge.storage.safetensors.TensorInfo;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * W' = W + scale · B·A for one LoRA module, as PEFT merges it (merge_and_unload): B·A is [out, in] and is
 * transposed onto weights stored [in, out] ({@code fan_in_fan_out}, GPT-2's Conv1D). The product is a gemm
 * on ND4J (OpenBLAS on CPU).
 */
final class LoraApplication {
    private LoraApplication() {
    }

    static MaterializedSource apply(Tensor base, MappedCheckpoint adapter, LoraModule module) {
        TensorInfo info = base.info();
        float[] values = Floats.widen(base);
        float[] a = Floats.widen(adapter.tensor(module.a().name()));
        float[] b = Floats.widen(adapter.tensor(module.b().name()));
        long rank = module.rank();
        INDArray matA = Nd4j.create(a, new long[] {rank, module.a().dim(1)}, DataType.FLOAT);
        INDArray matB = Nd4j.create(b, new long[] {module.b().dim(0), rank}, DataType.FLOAT);
        INDArray delta = matB.mmul(matA).muli(module.scaling());
        if (module.fanInFanOut()) {
            delta = delta.transpose();
        }
        float[] deltaValues = delta.dup('c').data().asFloat();
        for (int i = 0; i < values.length; i++) {
            values[i] += deltaValues[i];
        }
        return new MaterializedSource(info, values);
    }
}
