package io.modelmerge.engine.exec;

import io.modelmerge.engine.method.TensorParameters;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.util.List;
import java.util.Optional;

/**
 * One output tensor and how to make it.
 *
 * @param base   the base model's tensor, for methods that subtract it
 * @param models the merged models' tensors, in recipe order
 * @param copy   true when the tensor is copied from the first input as is (integer buffers and the like)
 */
record PlannedTensor(TensorSpec output, Optional<Input> base, List<Input> models, TensorParameters parameters,
                     boolean copy) {

    /** A tensor of an opened input model. */
    record Input(int model, String tensor) {
    }

    PlannedTensor {
        models = List.copyOf(models);
    }

    String name() {
        return output.name();
    }

    long elements() {
        return parameters.elements();
    }

    /** This tensor with parameters the run computed (model-wide thresholds, Fisher norms). */
    PlannedTensor withParameters(TensorParameters computed) {
        return new PlannedTensor(output, base, models, computed, copy);
    }
}
