package io.modelmerge.engine.method;

/**
 * A run of elements of one tensor, widened to F32: the base model's values (null for methods without a base)
 * and each model's values, in recipe order.
 *
 * @param offset index of the block's first element within the tensor
 */
public record Block(long offset, int length, float[] base, float[][] models) {
}
