package io.modelmerge.registry.api;

/** A file of a version; {@code downloadUrl} only where asked for (presigned on S3, {@code file:} locally). */
public record FileView(String path, long size, String sha256, String crc32c, String downloadUrl) {
}
