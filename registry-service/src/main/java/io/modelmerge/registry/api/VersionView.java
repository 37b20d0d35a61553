package io.modelmerge.registry.api;

import io.modelmerge.registry.content.ContentSummary;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Map;

/** One version with everything known about it: files, summary, parents, recipe, metrics and the aliases on it. */
public record VersionView(String ref, String model, int version, String status, String format, String storageUri,
                          String contentDigest, ContentSummary summary, List<FileView> files, List<ParentView> parents,
                          String recipe, Map<String, Object> parameters, Map<String, Double> metrics,
                          Map<String, String> tags, String description, List<String> aliases, String createdBy,
                          OffsetDateTime createdAt) {
}
