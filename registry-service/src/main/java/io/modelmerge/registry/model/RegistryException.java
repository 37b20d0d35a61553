package io.modelmerge.registry.model;

import java.util.List;

/**
 * A request the registry refuses, with the HTTP status it maps to and, for bad input, the fields at fault.
 * Rendered as RFC 9457 problem+json by the API's {@code ProblemMappers}.
 */
public final class RegistryException extends RuntimeException {
    /** One field of the request and what is wrong with it. */
    public record FieldError(String field, String reason) {
    }

    private final int status;
    private final List<FieldError> errors;

    private RegistryException(int status, String detail, List<FieldError> errors) {
        super(detail);
        this.status = status;
        this.errors = List.copyOf(errors);
    }

    /** 400: {@code field} of the request is wrong. */
    public static RegistryException badRequest(String field, String reason) {
        return new RegistryException(400, field + ": " + reason, List.of(new FieldError(field, reason)));
    }

    /** 401: the request carries no valid token; {@code detail} says what is wrong with it, never the token. */
    public static RegistryException unauthorized(String detail) {
        return new RegistryException(401, detail, List.of());
    }

    /** 403: the caller's token may not do this; {@code detail} names the scope and the model or alias. */
    public static RegistryException forbidden(String detail) {
        return new RegistryException(403, detail, List.of());
    }

    /** 404: the thing the URL or a ref names does not exist. */
    public static RegistryException notFound(String detail) {
        return new RegistryException(404, detail, List.of());
    }

    /** 409: the request conflicts with the registry's state. */
    public static RegistryException conflict(String detail) {
        return new RegistryException(409, detail, List.of());
    }

    /** 422: the files the request points at fail validation; {@code detail} names the file and the rule. */
    public static RegistryException unprocessable(String field, String detail) {
        return new RegistryException(422, detail, List.of(new FieldError(field, detail)));
    }

    public int status() {
        return status;
    }

    public List<FieldError> errors() {
        return errors;
    }
}
