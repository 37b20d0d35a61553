package io.modelmerge.registry.client;

import java.util.regex.Pattern;

/**
 * A model's name, {@code namespace/name}: each part lower-case letters, digits, {@code -}, {@code _} and
 * {@code .}, starting with a letter or digit, so no part can be {@code .}, {@code ..} or empty and a name can
 * never step out of a path it is used in.
 */
public record ModelName(String namespace, String name) {
    private static final Pattern PART = Pattern.compile("[a-z0-9][a-z0-9._-]{0,95}");

    public ModelName {
        checkPart(namespace);
        checkPart(name);
    }

    /** Parses {@code namespace/name}. */
    public static ModelName parse(String text) {
        if (text == null || text.isBlank()) {
            throw new InvalidNameException("a model name namespace/name is required");
        }
        int slash = text.indexOf('/');
        if (slash < 0 || text.indexOf('/', slash + 1) >= 0) {
            throw new InvalidNameException("'" + text + "' is not namespace/name (exactly one '/')");
        }
        try {
            return new ModelName(text.substring(0, slash), text.substring(slash + 1));
        } catch (InvalidNameException e) {
            throw new InvalidNameException("'" + text + "': " + e.getMessage());
        }
    }

    /** Checks a single part given on its own, e.g. the namespace of an index request. */
    public static void checkPart(String part) {
        if (part == null || !PART.matcher(part).matches() || part.contains("..")) {
            throw new InvalidNameException("'" + part + "' must be 1 to 96 of a-z 0-9 . _ -, start with a letter or"
                    + " digit and not contain '..'");
        }
    }

    @Override
    public String toString() {
        return namespace + "/" + name;
    }
}
