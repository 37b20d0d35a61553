package io.modelmerge.registry.db;

import java.time.OffsetDateTime;
import java.util.List;

/** One API token as stored: never the token itself, only its SHA-256. */
public record TokenRow(String id, String name, byte[] secretSha256, List<String> scopes, List<String> namespaces,
                       List<String> aliases, String createdBy, OffsetDateTime createdAt, OffsetDateTime expiresAt,
                       OffsetDateTime revokedAt, OffsetDateTime lastUsedAt) {
}
