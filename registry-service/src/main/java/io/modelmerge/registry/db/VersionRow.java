package io.modelmerge.registry.db;

import io.modelmerge.registry.content.ContentSummary;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Map;

/** One version as stored, with its files, parents and the aliases on it. */
public record VersionRow(String ref, String model, int version, String status, String format, String storageUri,
                          String contentDigest, ContentSummary summary, List<FileRow> files, List<ParentRow> parents,
                          String recipe, Map<String, Object> parameters, Map<String, Double> metrics,
                          Map<String, String> tags, String description, List<String> aliases, String createdBy,
                          OffsetDateTime createdAt) {

    /** The same version with {@code files} replaced (e.g. by files carrying download URLs). */
    public VersionRow withFiles(List<FileRow> replaced) {
        return new VersionRow(ref, model, version, status, format, storageUri, contentDigest, summary, replaced,
                parents, recipe, parameters, metrics, tags, description, aliases, createdBy, createdAt);
    }
}
