package io.modelmerge.engine.method;

import java.util.List;

/**
 * How the entries a random drop keeps are scaled: so each task vector keeps its L1 norm ({@code l1}, mergekit's
 * default, which mergekit also spells {@code true}), by 1/density (DARE paper, PEFT), by 1/keep probability
 * (DELLA paper), or not at all ({@code none}, mergekit's {@code false}).
 */
public enum Rescale implements Variant {
    L1, INVERSE_DENSITY, INVERSE_PROBABILITY, NONE;

    @Override
    public List<String> spellings() {
        return switch (this) {
            case L1 -> List.of("l1", "true");
            case NONE -> List.of("none", "false");
            default -> Variant.super.spellings();
        };
    }
}
