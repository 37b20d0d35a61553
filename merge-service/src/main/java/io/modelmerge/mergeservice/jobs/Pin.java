package io.modelmerge.mergeservice.jobs;

/** What a ref of a recipe was pinned to when the job was accepted: a version (empty for a URI) and its files. */
public record Pin(String version, String storageUri) {
}
