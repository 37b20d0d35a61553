package io.modelmerge.engine.method;

/**
 * Which entries tied with a per-tensor magnitude threshold are kept: exactly k in all, the tied ones by position
 * (lowest index first; mergekit keeps exactly k, breaking ties as its sort happens to), or every tied entry
 * ({@code all}: a few more than k where magnitudes repeat, as BF16 ones often do; breadcrumbs then drops every
 * entry tied with its outlier threshold). {@code topk_scope: model} keeps every tie, as the TIES paper's code does.
 */
public enum ThresholdTies implements Variant {
    POSITION, ALL
}
