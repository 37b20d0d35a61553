package io.modelmerge.registry.service;

import io.modelmerge.registry.api.RegistryException;
import java.util.Map;

/** Checks key/value tags of models and versions. */
final class Tags {
    private static final int MAX_KEY = 128;
    private static final int MAX_VALUE = 1024;

    private Tags() {
    }

    static Map<String, String> check(String field, Map<String, String> tags) {
        tags.forEach((key, value) -> {
            if (key.isBlank() || key.length() > MAX_KEY) {
                throw RegistryException.badRequest(field, "tag key '" + key + "' must be 1 to " + MAX_KEY + " characters");
            }
            if (value == null || value.length() > MAX_VALUE) {
                throw RegistryException.badRequest(field + "." + key, "tag value must be a string of at most "
                        + MAX_VALUE + " characters");
            }
        });
        return tags;
    }
}
