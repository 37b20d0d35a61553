package io.modelmerge.mergeservice.jobs;

import io.modelmerge.registry.client.Identity;
import io.modelmerge.registry.client.Scope;

/** A submission or request the service refuses, with the kind of refusal the API maps to a status code. */
public final class JobException extends RuntimeException {
    /**
     * INVALID_ARGUMENT: the request itself is wrong; NOT_FOUND: a ref or job that does not exist;
     * FAILED_PRECONDITION: inputs that do not merge; ALREADY_EXISTS: an idempotency key used for another
     * request; UNAVAILABLE: the registry, the storage or the database cannot be reached now (retry).
     */
    public enum Kind {
        INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ALREADY_EXISTS, UNAVAILABLE, UNAUTHENTICATED, PERMISSION_DENIED
    }

    private final Kind kind;

    public JobException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    /** PERMISSION_DENIED: the caller's token may not do {@code what}; the message names the token and its grants. */
    public static JobException denied(Identity caller, String what) {
        return new JobException(Kind.PERMISSION_DENIED, "token '" + caller.name() + "' may not " + what + " (scopes "
                + caller.scopes().stream().map(Scope::label).sorted().toList() + " on " + caller.namespaces() + ")");
    }

    public Kind kind() {
        return kind;
    }
}
