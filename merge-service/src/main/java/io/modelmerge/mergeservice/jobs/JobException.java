package io.modelmerge.mergeservice.jobs;

/** A submission or request the service refuses, with the kind of refusal the API maps to a status code. */
public final class JobException extends RuntimeException {
    public enum Kind { INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION }

    private final Kind kind;

    public JobException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }
}
