package io.modelmerge.registry.api;

import java.time.OffsetDateTime;
import java.util.Map;

/** A model as the API shows it; {@code latestVersion} is the newest READY version, null when there is none. */
public record ModelView(String name, String namespace, String description, Map<String, String> tags,
                        Integer latestVersion, long versionCount, OffsetDateTime createdAt, OffsetDateTime updatedAt) {
}
