package io.modelmerge.registry.client;

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

    /** {@code alias}, if it may name an alias. */
    public static String check(String alias) {
        if (alias == null || !NAME.matcher(alias).matches()) {
            throw new InvalidNameException("alias '" + alias + "' must be 1 to 64 of a-z 0-9 . _ - starting with a"
                    + " letter");
        }
        if (alias.equals(LATEST)) {
            throw new InvalidNameException("'latest' is reserved: it always means the newest READY version");
        }
        return alias;
    }
}
