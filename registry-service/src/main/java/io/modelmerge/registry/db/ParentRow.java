package io.modelmerge.registry.db;

/** A parent of a version as stored, pinned to a version number, with the relation. */
public record ParentRow(String ref, String model, int version, String relation) {
}
