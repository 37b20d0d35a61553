package io.modelmerge.engine.method;

/**
 * How task vectors are combined: summed ({@code NONE}, no recipe spells it), or TIES' sign election on weighted
 * deltas, dividing by the agreeing weights ({@code MERGEKIT}), or on unweighted deltas, dividing by the number of
 * agreeing models ({@code PAPER}: the TIES paper, PEFT).
 */
public enum Election implements Variant {
    NONE, MERGEKIT, PAPER
}
