package io.modelmerge.registry.model;

import io.modelmerge.registry.api.RegistryException;
import java.util.regex.Pattern;

/**
 * Names of aliases ({@code prod}, {@code nightly}): they start with a letter so that {@code @3} is always a
 * version number, and {@code latest} is reserved for the newest READY version.
 */
public final class AliasName {
    public static final String LATEST = "latest";
    private static final Pattern NAME = Pattern.compile("[a-z][a-z0-9._-]{0,63}");

    private AliasName() {
    }

    public static String check(String field, String alias) {
        if (alias == null || !NAME.matcher(alias).matches()) {
            throw RegistryException.badRequest(field, "alias '" + alias + "' must be 1 to 64 of a-z 0-9 . _ -"
                    + " starting with a letter");
        }
        if (alias.equals(LATEST)) {
            throw RegistryException.badRequest(field, "'latest' is reserved: it always means the newest READY version");
        }
        return alias;
    }
}
