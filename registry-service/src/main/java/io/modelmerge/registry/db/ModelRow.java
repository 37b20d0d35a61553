package io.modelmerge.registry.db;

import java.time.OffsetDateTime;
import java.util.Map;

/** A model as stored; {@code latestVersion} is the newest READY version, null when there is none. */
public record ModelRow(String name, String namespace, String description, Map<String, String> tags,
                        Integer latestVersion, long versionCount, OffsetDateTime createdAt, OffsetDateTime updatedAt) {
}
