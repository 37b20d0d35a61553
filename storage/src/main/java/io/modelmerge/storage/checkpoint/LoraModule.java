package io.modelmerge.storage.checkpoint;

import io.modelmerge.storage.safetensors.TensorInfo;

/**
 * One adapted module of a LoRA adapter: its low-rank factors and what they change in the base model.
 * The base weight changes by {@code scaling · B·A}, transposed when {@code fanInFanOut} (GPT-2's Conv1D
 * stores weights as [in, out]).
 *
 * @param module     the module's name in the base model, e.g. {@code transformer.h.0.attn.c_attn}
 * @param baseWeight the base tensor it changes, {@code module + ".weight"}
 * @param a          lora_A, shape [r, in]
 * @param b          lora_B, shape [out, r]
 */
public record LoraModule(String module, String baseWeight, TensorInfo a, TensorInfo b, double scaling,
                         boolean fanInFanOut) {

    public int rank() {
        return Math.toIntExact(a.dim(0));
    }

    /** The shape of B·A, before any transpose: [out, in]. */
    public long[] deltaShape() {
        return new long[] {b.dim(0), a.dim(1)};
    }

    /** The shape of the base weight this module changes. */
    public long[] baseShape() {
        return fanInFanOut ? new long[] {a.dim(1), b.dim(0)} : deltaShape();
    }
}
