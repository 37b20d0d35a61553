package io.modelmerge.engine.search;

/** An evaluation that gave no score: the evaluator failed, refused the request, or answered after the deadline. */
public class EvaluationFailedException extends Exception {
    public EvaluationFailedException(String message) {
        super(message);
    }

    public EvaluationFailedException(String message, Throwable cause) {
        super(message, cause);
    }
}
