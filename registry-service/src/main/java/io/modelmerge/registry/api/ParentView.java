package io.modelmerge.registry.api;

/** A parent of a version, pinned to a version number, and how the child came from it. */
public record ParentView(String ref, String model, int version, String relation) {
}
