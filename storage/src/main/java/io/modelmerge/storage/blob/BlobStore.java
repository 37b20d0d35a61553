package io.modelmerge.storage.blob;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * Objects under one root ({@code file:///dir/} or {@code s3://bucket/prefix/}), addressed by keys relative to
 * it with {@code /} as separator. A handful of verbs; everything else is derived from them.
 */
public interface BlobStore extends AutoCloseable {

    /** The root every key is relative to. */
    URI root();

    /** How to name {@code key} to a person: its URI, or its path for a local file. */
    default String describe(String key) {
        return root().resolve(key).toString();
    }

    /** Size and checksum of {@code key}, or empty if there is no such object. */
    Optional<BlobInfo> head(String key) throws IOException;

    /** Reads {@code length} bytes of {@code key} from {@code offset}; {@code length} -1 reads to the end. */
    InputStream read(String key, long offset, long length) throws IOException;

    /**
     * Writes {@code content} to {@code key}, replacing what was there, streaming it in parts (in parallel where
     * the store can) without holding it whole. A CRC32C of the content is sent with it and checked by the store.
     */
    BlobInfo write(String key, InputStream content) throws IOException;

    /** Like {@link #write}, but only if {@code key} does not exist yet; empty if it did (nothing is written). */
    Optional<BlobInfo> writeIfAbsent(String key, InputStream content) throws IOException;

    /** Every object whose key starts with {@code prefix}, in key order. */
    List<BlobInfo> list(String prefix) throws IOException;

    /**
     * The objects directly in directory {@code dir} (a key prefix ending in {@code /}, or {@code ""} for the
     * root), not those in its subdirectories, in key order. Stores override it to avoid listing the subtree.
     */
    default List<BlobInfo> listDirectory(String dir) throws IOException {
        return list(dir).stream().filter(b -> b.key().indexOf('/', dir.length()) < 0).toList();
    }

    /** Deletes {@code key}; deleting a missing key is not an error. */
    void delete(String key) throws IOException;

    /**
     * A URL from which a client without our credentials can download {@code key} for {@code validFor}: a
     * presigned GET on S3, the file's own {@code file:} URL locally.
     */
    URI downloadUrl(String key, Duration validFor);

    /** The object as a local file that can be memory-mapped, when the store keeps it as one. */
    default Optional<Path> localFile(String key) {
        return Optional.empty();
    }

    /** Reads the whole object; for small objects such as JSON configs. */
    default InputStream read(String key) throws IOException {
        return read(key, 0, -1);
    }

    /** Reads exactly {@code length} bytes from {@code offset}. */
    default byte[] readRange(String key, long offset, int length) throws IOException {
        try (InputStream in = read(key, offset, length)) {
            byte[] bytes = in.readNBytes(length);
            if (bytes.length != length) {
                throw new IOException(describe(key) + ": expected " + length + " bytes at " + offset
                        + ", got " + bytes.length);
            }
            return bytes;
        }
    }

    default byte[] readAllBytes(String key) throws IOException {
        try (InputStream in = read(key)) {
            return in.readAllBytes();
        }
    }

    default BlobInfo write(String key, byte[] content) throws IOException {
        return write(key, new ByteArrayInputStream(content));
    }

    default boolean exists(String key) throws IOException {
        return head(key).isPresent();
    }

    @Override
    default void close() throws IOException {
    }
}
