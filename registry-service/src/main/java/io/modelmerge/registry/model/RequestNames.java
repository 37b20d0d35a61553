package io.modelmerge.registry.model;

import io.modelmerge.registry.client.AliasName;
import io.modelmerge.registry.client.InvalidNameException;
import io.modelmerge.registry.client.ModelName;
import io.modelmerge.registry.client.VersionRef;
import java.util.function.Supplier;

/**
 * The name, alias and ref grammar (registry-client's, shared with every client) read from a request field: a
 * break of it is a 400 naming the field.
 */
public final class RequestNames {
    private RequestNames() {
    }

    public static ModelName model(String field, String text) {
        return read(field, () -> ModelName.parse(text));
    }

    public static void namespace(String field, String part) {
        read(field, () -> {
            ModelName.checkPart(part);
            return part;
        });
    }

    public static String alias(String field, String alias) {
        return read(field, () -> AliasName.check(alias));
    }

    public static VersionRef ref(String field, String text) {
        return read(field, () -> VersionRef.parse(text));
    }

    private static <T> T read(String field, Supplier<T> parse) {
        try {
            return parse.get();
        } catch (InvalidNameException e) {
            throw RegistryException.badRequest(field, e.getMessage());
        }
    }
}
