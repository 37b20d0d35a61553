package io.modelmerge.storage.checkpoint;

/** How a checkpoint's tensors are laid out in files. */
public enum CheckpointFormat {
    /** One {@code *.safetensors} file. */
    SAFETENSORS,
    /** Shards {@code model-0000i-of-0000N.safetensors} and a {@code model.safetensors.index.json}. */
    SHARDED,
    /** A PEFT adapter: {@code adapter_config.json} and {@code adapter_model.safetensors}. */
    PEFT_ADAPTER,
    /**
     * A stored delta from a base model: {@code delta.json}, {@code delta.safetensors} and, when some elements need
     * their exact values, {@code delta-exact.safetensors}; its tensors are the delta's encodings, not a model's.
     */
    DELTA
}
