package io.modelmerge.registry.client;

import java.util.Locale;

/** What a token may do. Every scope lets it read too; {@code ADMIN} lets it do everything. */
public enum Scope {
    /** Models, versions, lineage, aliases, resolve. */
    READ,
    /** Create models, register versions, index storage. */
    WRITE,
    /** Move or delete aliases (only the token's aliases, where it names some). */
    PROMOTE,
    /** Merge and delta jobs. */
    SUBMIT,
    /** Tokens, deleting models. */
    ADMIN;

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The scope named {@code value} (any case); IllegalArgumentException, saying what scopes there are, if none. */
    public static Scope parse(String value) {
        try {
            return valueOf(value.strip().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException | NullPointerException e) {
            throw new IllegalArgumentException("'" + value + "' is not a scope (read, write, promote, submit, admin)");
        }
    }
}
