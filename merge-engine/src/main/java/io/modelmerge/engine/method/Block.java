package io.modelmerge.engine.method;

import java.util.Optional;
import java.util.function.IntPredicate;

/**
 * A run of elements of one tensor, widened to F32: the base model's values (null for methods without a base)
 * and each model's values, in recipe order.
 *
 * @param offset index of the block's first element within the tensor
 */
public record Block(long offset, int length, float[] base, float[][] models) {

    /**
     * What a pass that reads only some inputs ({@link Pass#inputs}) sees of this block: the models {@code only}
     * accepts, the others and the base null; the block itself when every input is read.
     */
    public Block readingOnly(Optional<IntPredicate> only) {
        if (only.isEmpty()) {
            return this;
        }
        float[][] read = new float[models.length][];
        for (int m = 0; m < models.length; m++) {
            read[m] = only.get().test(m) ? models[m] : null;
        }
        return new Block(offset, length, null, read);
    }
}
