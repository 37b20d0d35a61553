package io.modelmerge.registry.model;

import io.modelmerge.registry.api.RegistryException;
import java.util.Optional;

/**
 * A reference to one version: {@code ns/name@3} (a number), {@code ns/name@prod} (an alias), or
 * {@code ns/name} / {@code ns/name@latest} (the newest READY version).
 */
public record VersionRef(ModelName model, Optional<Integer> version, Optional<String> alias) {

    /** Version {@code version} of {@code model}. */
    public static VersionRef of(ModelName model, int version) {
        return new VersionRef(model, Optional.of(version), Optional.empty());
    }

    public static VersionRef parse(String field, String text) {
        if (text == null || text.isBlank()) {
            throw RegistryException.badRequest(field, "a ref ns/name, ns/name@N or ns/name@alias is required");
        }
        int at = text.indexOf('@');
        ModelName model = ModelName.parse(field, at < 0 ? text : text.substring(0, at));
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
            throw RegistryException.badRequest(field, "'" + text + "': version numbers start at 1 and fit an int");
        }
        return new VersionRef(model, Optional.empty(), Optional.of(AliasName.check(field, selector)));
    }

    @Override
    public String toString() {
        return model + version.map(v -> "@" + v).or(() -> alias.map(a -> "@" + a)).orElse("");
    }
}
