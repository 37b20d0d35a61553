package io.modelmerge.registry.model;

import java.util.Arrays;
import java.util.stream.Collectors;

/** What a version's files are. */
public enum VersionFormat {
    /** A full model: one safetensors file or a sharded set. */
    CHECKPOINT,
    /** A PEFT adapter directory: adapter_config.json and adapter_model.safetensors. */
    PEFT_ADAPTER,
    /**
     * A stored delta from a parent checkpoint (relation {@code delta}; the fine-tune it came from, {@code delta_of}):
     * delta.json, delta.safetensors, as {@code mergectl delta} writes them.
     */
    DELTA,
    /** A diagonal Fisher of a parent checkpoint (relation {@code fisher_of}): F32 tensors named as the model's. */
    FISHER,
    /**
     * The Gram matrices of a parent checkpoint's linear layers' inputs (relation {@code gram_of}), for
     * {@code regmean}: F32 [in, in] tensors named as the weights (or mapped to them in the file's metadata).
     */
    GRAM;

    public String wire() {
        return name().toLowerCase();
    }

    public static VersionFormat parse(String field, String text) {
        return Arrays.stream(values()).filter(f -> f.wire().equals(text)).findFirst()
                .orElseThrow(() -> RegistryException.badRequest(field, "unknown format '" + text + "'; expected one of "
                        + Arrays.stream(values()).map(VersionFormat::wire).collect(Collectors.joining(", "))));
    }
}
