package io.modelmerge.registry.client;

import java.util.Optional;
import java.util.regex.Pattern;

/**
 * A reference to one version: {@code ns/name@3} (a number), {@code ns/name@prod} (an alias), or
 * {@code ns/name} / {@code ns/name@latest} (the newest READY version).
 */
public record VersionRef(ModelName model, Optional<Integer> version, Optional<String> alias) {
    /** What a recipe's model string must look like to be read as a ref rather than a path or URI. */
    private static final Pattern REF_SHAPED =
            Pattern.compile("[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*(@[A-Za-z0-9._-]+)?");

    /** Version {@code version} of {@code model}. */
    public static VersionRef of(ModelName model, int version) {
        return new VersionRef(model, Optional.of(version), Optional.empty());
    }

    /** Whether {@code text} has a ref's shape (so it names a registry version, valid or not, not a path). */
    public static boolean isRefShaped(String text) {
        return REF_SHAPED.matcher(text).matches();
    }

    public static VersionRef parse(String text) {
        if (text == null || text.isBlank()) {
            throw new InvalidNameException("a ref ns/name, ns/name@N or ns/name@alias is required");
        }
        int at = text.indexOf('@');
        ModelName model = ModelName.parse(at < 0 ? text : text.substring(0, at));
        if (at < 0) {
            return new VersionRef(model, Optional.empty(), Optional.empty());
        }
        String selector = text.substring(at + 1);
        if (selector.equals(AliasName.LATEST)) {
            return new VersionRef(model, Optional.empty(), Optional.empty());
        }
        if (!selector.isEmpty() && selector.chars().allMatch(Character::isDigit)) {
            try {
                int version = Integer.parseInt(selector);
                if (version >= 1) {
                    return new VersionRef(model, Optional.of(version), Optional.empty());
                }
            } catch (NumberFormatException e) {
                // falls through to the error below
            }
            throw new InvalidNameException("'" + text + "': version numbers start at 1 and fit an int");
        }
        return new VersionRef(model, Optional.empty(), Optional.of(AliasName.check(selector)));
    }

    @Override
    public String toString() {
        return model + version.map(v -> "@" + v).or(() -> alias.map(a -> "@" + a)).orElse("");
    }
}
