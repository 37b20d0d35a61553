package io.modelmerge.registry.client;

/** A model name, alias or ref that breaks the grammar; the message says which rule, quoting the text. */
public final class InvalidNameException extends IllegalArgumentException {
    public InvalidNameException(String reason) {
        super(reason);
    }
}
