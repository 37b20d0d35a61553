package io.modelmerge.service.limits;

/** A request field over one of the {@link Limits}: the field, and why. */
public final class LimitException extends IllegalArgumentException {
    private final String field;
    private final String reason;

    public LimitException(String field, String reason) {
        super(field + ": " + reason);
        this.field = field;
        this.reason = reason;
    }

    public String field() {
        return field;
    }

    public String reason() {
        return reason;
    }
}
