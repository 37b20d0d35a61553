package io.modelmerge.engine.method;

import java.util.List;
import java.util.Optional;

/**
 * {@code cat}, {@code svd} and {@code robustmerge}: methods that combine PEFT LoRA adapters of one base into one
 * adapter, module by module (the engine's {@code AdapterMerge} runs them). They take no base
 * and no slices; each adapter takes a {@code weight}.
 *
 * @param globalParameters {@code target_overlap} ({@code refuse}: adapters must adapt the same modules;
 *                         {@code intersect}: merge the shared ones), and for {@code svd} the output's
 *                         {@code rank} (0, the default: the largest input rank)
 */
public record AdapterMethod(String name, List<ParameterDef> globalParameters) implements RecipeMethod {
    public static final ParameterDef WEIGHT = ParameterDef.number("weight", 1.0);
    public static final ParameterDef TARGET_OVERLAP = ParameterDef.variant("target_overlap", TargetOverlap.REFUSE,
            TargetOverlap.values());
    /** For {@code svd}: the output's rank, an integer; 0 takes the largest input rank. */
    public static final ParameterDef RANK = ParameterDef.number("rank", 0)
            .within(new ParameterDef.Range(0, true, Integer.MAX_VALUE, true));

    /** Adapters adapting different modules: refused, or merged on the modules they share. */
    public enum TargetOverlap implements Variant {
        REFUSE, INTERSECT
    }

    /** For {@code robustmerge}: the fraction of each factor's entries kept, by magnitude (the authors' 0.2). */
    public static final ParameterDef KEEP = ParameterDef.number("density", 0.2)
            .within(new ParameterDef.Range(0, false, 1, true));
    /** For {@code robustmerge}: the share of ranks whose scale stays its own; the rest are raised to it (0.2). */
    public static final ParameterDef ATT_RATIO = ParameterDef.number("att_ratio", 0.2)
            .within(new ParameterDef.Range(0, false, 1, true));
    /** For {@code robustmerge}: the factor each adapter's pruned factors enter the sums with (the authors' 2). */
    public static final ParameterDef FUSE_WEIGHT = ParameterDef.number("fuse_weight", 2.0);

    /** Stacks the factors: exact, rank Σ rᵢ. */
    public static final AdapterMethod CAT = new AdapterMethod("cat", List.of(TARGET_OVERLAP));
    /** Truncates Σ wᵢsᵢBᵢAᵢ to {@code rank} by its SVD. */
    public static final AdapterMethod SVD = new AdapterMethod("svd", List.of(TARGET_OVERLAP, RANK));
    /**
     * RobustMerge (formerly CoPA-Merging): each factor pruned to its largest entries, A summed, B's rank columns
     * averaged with per-rank complementary scales from A's pruning (the engine's {@code AdapterMerge}).
     */
    public static final AdapterMethod ROBUST = new AdapterMethod("robustmerge", List.of(TARGET_OVERLAP, KEEP,
            ATT_RATIO, FUSE_WEIGHT));

    public AdapterMethod {
        globalParameters = List.copyOf(globalParameters);
    }

    @Override
    public boolean requiresBase() {
        return false;
    }

    @Override
    public Optional<String> needsMoreThanCheckpoints() {
        return Optional.of("it combines LoRA adapters (see AdapterMergeTest for adapter timings)");
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return List.of(WEIGHT);
    }
}
