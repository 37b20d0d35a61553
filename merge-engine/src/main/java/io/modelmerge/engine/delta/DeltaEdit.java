package io.modelmerge.engine.delta;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * How a fine-tune's delta Δ = θ_ft − θ_base is stored (the edits of "A Unified View of Delta Parameter Editing
 * in Post-Trained Large-Scale Models"): whole, sparsified by a random drop (DARE) or by magnitude, or binarised
 * (BitDelta). Tensors the edit does not select are stored dense.
 */
public sealed interface DeltaEdit {

    /** The operation's name in the manifest. */
    String operation();

    /** The parameters the manifest records. */
    Map<String, Object> parameters();

    /**
     * The tensors BitDelta and low-rank extraction leave at full precision by default: embeddings and heads, as
     * BitDelta keeps them and as PEFT saves them whole.
     */
    Pattern EMBEDDINGS_AND_HEADS = Pattern.compile("embed|lm_head|wte|wpe|score|classifier");

    /** Whether tensor {@code name} of {@code rank} dimensions is edited (else stored dense). */
    boolean edits(String name, int rank);

    /** Within what the top-k by magnitude is taken, or a BitDelta scale computed. */
    enum Scope { TENSOR, ROW }

    /** How DARE scales the entries it keeps: by 1/(1 − p) (the paper), to keep the L1 norm (mergekit), or not. */
    enum DareRescale { INVERSE, L1, NONE }

    /** Δ as it is, in F32 (with the exact values of the few elements where base + Δ misses the fine-tune). */
    record Dense() implements DeltaEdit {
        @Override
        public String operation() {
            return "extract";
        }

        @Override
        public Map<String, Object> parameters() {
            return Map.of();
        }

        @Override
        public boolean edits(String name, int rank) {
            return false;
        }
    }

    /** DARE: each entry dropped with probability {@code p} by a mask seeded per tensor, the rest rescaled. */
    record Dare(double p, DareRescale rescale, long seed) implements DeltaEdit {
        public Dare {
            if (!(p >= 0 && p < 1)) {
                throw new IllegalArgumentException("DARE's drop probability p must be in [0, 1), got " + p);
            }
        }

        @Override
        public String operation() {
            return "sparsify";
        }

        @Override
        public Map<String, Object> parameters() {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("method", "dare");
            out.put("p", p);
            out.put("rescale", rescale.name().toLowerCase());
            out.put("seed", seed);
            return out;
        }

        @Override
        public boolean edits(String name, int rank) {
            return true;
        }
    }

    /** Keeps the top {@code density} of entries by |Δ|, per tensor or per row, exactly, ties by position. */
    record Magnitude(double density, Scope scope) implements DeltaEdit {
        public Magnitude {
            if (!(density > 0 && density <= 1)) {
                throw new IllegalArgumentException("density must be in (0, 1], got " + density);
            }
        }

        @Override
        public String operation() {
            return "sparsify";
        }

        @Override
        public Map<String, Object> parameters() {
            return Map.of("method", "magnitude", "density", density, "scope", scope.name().toLowerCase());
        }

        @Override
        public boolean edits(String name, int rank) {
            return true;
        }
    }

    /**
     * BitDelta: Δ̂ = α·sign(Δ), α = mean|Δ| (per tensor, BitDelta's data-free initial scale, or per row), for the
     * tensors whose names {@code binarised} finds (by default the 2-D linear weights: embeddings, norms and heads
     * are stored dense, as BitDelta keeps them at full precision).
     */
    record BitDelta(Scope scope, Pattern binarised, Pattern excluded) implements DeltaEdit {
        public static BitDelta defaults() {
            return new BitDelta(Scope.TENSOR, Pattern.compile(""), EMBEDDINGS_AND_HEADS);
        }

        @Override
        public String operation() {
            return "bitdelta";
        }

        @Override
        public Map<String, Object> parameters() {
            return Map.of("scope", scope.name().toLowerCase(), "include", binarised.pattern(), "exclude",
                    excluded.pattern());
        }

        @Override
        public boolean edits(String name, int rank) {
            return rank == 2 && binarised.matcher(name).find()
                    && (excluded.pattern().isEmpty() || !excluded.matcher(name).find());
        }
    }
}
