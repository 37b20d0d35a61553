package io.modelmerge.registry.content;

/** One file of a version, relative to the version's directory, with the checksums of its content. */
public record StoredFile(String path, long size, String sha256, String crc32c) {
}
