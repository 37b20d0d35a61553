package io.modelmerge.engine.method;

/**
 * Where magnitude top-k is taken: each tensor keeps its own top density ({@code tensor}: mergekit, PEFT), or one
 * threshold per model over all its tensors ({@code model}: the TIES paper, MergeLM, FusionBench).
 */
public enum TopKScope implements Variant {
    TENSOR, MODEL
}
