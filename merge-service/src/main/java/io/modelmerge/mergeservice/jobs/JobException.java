package io.modelmerge.mergeservice.jobs;

/** A submission or request the service refuses, with the kind of refusal the API maps to a status code. */
public final class JobException extends RuntimeException {
    /**
     * INVALID_ARGUMENT: the request itself is wrong; NOT_FOUND: a ref or job that does not exist;
     * FAILED_PRECONDITION: inputs that do not merge; ALREADY_EXISTS: an idempotency key used for another
     * request; UNAVAILABLE: the registry, the storage or the database cannot be reached now (retry).
     */
    public enum Kind { INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ALREADY_EXISTS, UNAVAILABLE }

    private final Kind kind;

    public JobException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }
}
