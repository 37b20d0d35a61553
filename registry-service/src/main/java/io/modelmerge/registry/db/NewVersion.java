package io.modelmerge.registry.db;

import io.modelmerge.registry.content.StoredContent;
import io.modelmerge.registry.model.Relation;
import io.modelmerge.registry.model.VersionFormat;
import java.util.List;
import java.util.Map;

/** A version about to be inserted: its checked content, and what the request said about it. */
public record NewVersion(VersionFormat format, StoredContent content, List<Parent> parents, String recipe,
                         Map<String, Object> parameters, Map<String, Double> metrics, Map<String, String> tags,
                         String description, String createdBy) {

    /** A parent version, by its row id, and the relation to it. */
    public record Parent(long versionId, Relation relation) {
    }

    public NewVersion {
        parents = List.copyOf(parents);
    }
}
