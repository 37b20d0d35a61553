package io.modelmerge.engine.exec;

import io.modelmerge.engine.method.Block;
import io.modelmerge.engine.method.MergeMethod;
import io.modelmerge.engine.method.Pass;
import io.modelmerge.storage.safetensors.DType;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.IntPredicate;
import java.util.function.UnaryOperator;

/** A planned tensor's inputs, opened: the base's tensor (null without a base) and each model's. */
record Sources(TensorSource base, List<TensorSource> models) {

    static Sources of(PlannedTensor tensor, List<InputModel> inputs) {
        Object computeDtype = tensor.parameters().global().get(MergeMethod.COMPUTE_DTYPE);
        UnaryOperator<TensorSource> converted = source -> computeDtype instanceof DType dtype
                && source.info().dtype() != dtype ? new RoundedSource(source, dtype) : source;
        TensorSource base = tensor.base().map(in -> converted.apply(inputs.get(in.model()).source(in.tensor())))
                .orElse(null);
        List<TensorSource> models = new ArrayList<>();
        for (PlannedTensor.Input in : tensor.models()) {
            models.add(converted.apply(inputs.get(in.model()).source(in.tensor())));
        }
        return new Sources(base, models);
    }

    /** Reads block {@code b} (of {@code block} elements) of every input into the worker's buffers, widened to F32. */
    Block load(int b, int block, long elements, Workspace ws) {
        return load(b, block, elements, ws, Optional.empty());
    }

    /**
     * Reads block {@code b} of the inputs a pass reads ({@link Pass#inputs}: when given, only the models it
     * accepts, and not the base; the others are null in the block).
     */
    Block load(int b, int block, long elements, Workspace ws, Optional<IntPredicate> only) {
        long offset = (long) b * block;
        int length = (int) Math.min(block, elements - offset);
        float[] baseValues = null;
        if (base != null && only.isEmpty()) {
            baseValues = ws.inputs[models.size()];
            base.read(offset, length, baseValues);
        }
        float[][] values = new float[models.size()][];
        for (int m = 0; m < models.size(); m++) {
            if (only.isPresent() && !only.get().test(m)) {
                continue;
            }
            values[m] = ws.inputs[m];
            models.get(m).read(offset, length, values[m]);
        }
        return new Block(offset, length, baseValues, values);
    }
}
