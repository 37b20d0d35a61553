package io.modelmerge.engine.exec;

import java.util.Optional;
import java.util.OptionalInt;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The transformer block a tensor belongs to, from its Hugging Face name: {@code model.layers.N.},
 * {@code transformer.h.N.}, {@code encoder.layer.N.}, {@code model.decoder.layers.N.}, {@code blocks.N.}, ...
 */
final class LayerIndex {
    private static final Pattern LAYER = Pattern.compile("(^|\\.)(layers|layer|h|blocks|block)\\.(\\d+)\\.");
    /** Token and position embeddings: what mergekit's architecture files list as a model's pre-weights. */
    private static final Pattern BEFORE_LAYERS = Pattern.compile(
            "embed_tokens|embed_in\\.|word_embeddings|(^|\\.)(wte|wpe|embeddings)\\.");

    private LayerIndex() {
    }

    static OptionalInt of(String tensorName) {
        Matcher m = LAYER.matcher(tensorName);
        return m.find() ? OptionalInt.of(Integer.parseInt(m.group(3))) : OptionalInt.empty();
    }

    /**
     * Whether a tensor outside the layers comes before them (the embeddings) rather than after (the final norm,
     * {@code lm_head}, {@code embed_out}).
     */
    static boolean beforeLayers(String tensorName) {
        return BEFORE_LAYERS.matcher(tensorName).find();
    }

    /** {@code tensorName} with its layer index replaced by {@code layer}. */
    static Optional<String> withLayer(String tensorName, int layer) {
        Matcher m = LAYER.matcher(tensorName);
        if (!m.find()) {
            return Optional.empty();
        }
        return Optional.of(tensorName.substring(0, m.start(3)) + layer + tensorName.substring(m.end(3)));
    }
}
