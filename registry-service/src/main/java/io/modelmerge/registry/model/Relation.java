package io.modelmerge.registry.model;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * How a version came from one of its parents. A stored delta names its base ({@code delta}: the checkpoint it
 * applies to) and the fine-tune it was taken from ({@code delta_of}); a Fisher or a set of Grams names the checkpoint
 * it was computed from ({@code fisher_of}, {@code gram_of}).
 */
public enum Relation {
    FINETUNE, MERGE, ADAPTER, DELTA, DELTA_OF, FISHER_OF, GRAM_OF;

    public String wire() {
        return name().toLowerCase();
    }

    public static Relation parse(String field, String text) {
        return Arrays.stream(values()).filter(r -> r.wire().equals(text)).findFirst()
                .orElseThrow(() -> RegistryException.badRequest(field, "unknown relation '" + text + "'; expected one of "
                        + Arrays.stream(values()).map(Relation::wire).collect(Collectors.joining(", "))));
    }
}
