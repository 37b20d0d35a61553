package io.modelmerge.registry.db;

/** A file of a version as stored; {@code downloadUrl} filled in by the service where asked for. */
public record FileRow(String path, long size, String sha256, String crc32c, String downloadUrl) {
}
