package io.modelmerge.engine.search;

import java.time.Instant;

/**
 * A model offered to an evaluator: its reference (a registry version or a path), its content digest (the key its
 * score is cached under), where its files are, the split to score it on, and when the answer is due.
 */
public record Candidate(String ref, String contentDigest, String location, String split, Instant deadline) {
    /** The split candidates are selected on. The test split is never offered for selection. */
    public static final String SELECTION_SPLIT = "validation";
}
