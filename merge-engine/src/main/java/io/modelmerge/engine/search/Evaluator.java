package io.modelmerge.engine.search;

/**
 * Scores candidate models on held-out data: an HTTP service the merge service calls (signed requests), or a
 * function in tests.
 */
public interface Evaluator {
    /** Name and version ({@code name@version}): with a candidate's content digest, the key of its cached score. */
    String id();

    /**
     * The candidate's score.
     *
     * @throws EvaluationFailedException when the evaluator failed, refused or answered late: that candidate
     *                                   fails and a search goes on without it
     */
    Score score(Candidate candidate) throws EvaluationFailedException;
}
