package io.modelmerge.storage.blob;

import java.util.Objects;
import java.util.Optional;

/**
 * What a store knows of one object.
 *
 * @param crc32c the CRC32C of the whole object, base64 of its 4 big-endian bytes (as S3 spells it), if known
 */
public record BlobInfo(String key, long size, Optional<String> crc32c) {

    public BlobInfo {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(crc32c, "crc32c");
        if (size < 0) {
            throw new IllegalArgumentException("Negative size for " + key + ": " + size);
        }
    }

    /** The last path segment of the key. */
    public String fileName() {
        int slash = key.lastIndexOf('/');
        return slash < 0 ? key : key.substring(slash + 1);
    }
}
