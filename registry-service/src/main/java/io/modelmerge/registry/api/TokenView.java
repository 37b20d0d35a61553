package io.modelmerge.registry.api;

import io.modelmerge.registry.db.TokenRow;
import java.time.OffsetDateTime;
import java.util.List;

/** A token as the API shows it: never its secret. */
public record TokenView(String id, String name, List<String> scopes, List<String> namespaces, List<String> aliases,
                        String createdBy, OffsetDateTime createdAt, OffsetDateTime expiresAt, OffsetDateTime revokedAt,
                        OffsetDateTime lastUsedAt) {
    static TokenView of(TokenRow row) {
        return new TokenView(row.id(), row.name(), row.scopes(), row.namespaces(), row.aliases(), row.createdBy(),
                row.createdAt(), row.expiresAt(), row.revokedAt(), row.lastUsedAt());
    }

    /** The answer to creating a token: the token itself, this once, beside what is stored. */
    public record Created(String token, TokenView stored) {
    }

    /** {@code POST /tokens}. */
    public record Request(String name, List<String> scopes, List<String> namespaces, List<String> aliases,
                          OffsetDateTime expiresAt) {
    }

    /** {@code GET /tokens/self}: who the caller is. */
    public record Self(String id, String name, List<String> scopes, List<String> namespaces, List<String> aliases) {
    }
}
