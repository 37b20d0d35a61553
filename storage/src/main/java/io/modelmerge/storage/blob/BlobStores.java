package io.modelmerge.storage.blob;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;

/** Opens the store behind a location a user typed: {@code s3://bucket/prefix}, {@code file:///dir} or a local path. */
public final class BlobStores {
    private BlobStores() {
    }

    /**
     * A store and a key inside it.
     *
     * @param key  the object ({@code file} true) or directory prefix ({@code ""} for the store's root)
     * @param file whether the location names one object rather than a directory
     */
    public record Located(BlobStore store, String key, boolean file) {
    }

    /**
     * Splits {@code location} into a store and a key: a file becomes its directory's store and its name; a
     * directory or an S3 prefix becomes a store rooted there. An S3 location is a file when it ends in
     * {@code .safetensors}.
     */
    public static Located locate(String location, S3Settings s3) {
        if (location.startsWith("s3://")) {
            if (location.endsWith(".safetensors")) {
                int slash = location.lastIndexOf('/');
                return new Located(S3BlobStore.open(URI.create(location.substring(0, slash + 1)), s3),
                        location.substring(slash + 1), true);
            }
            return new Located(S3BlobStore.open(URI.create(location), s3), "", false);
        }
        Path path = localPath(location).toAbsolutePath().normalize();
        if (Files.isRegularFile(path)) {
            return new Located(new LocalBlobStore(path.getParent()), path.getFileName().toString(), true);
        }
        return new Located(new LocalBlobStore(path), "", false);
    }

    private static Path localPath(String location) {
        if (location.startsWith("file:")) {
            return Path.of(URI.create(location));
        }
        if (location.matches("^[a-zA-Z][a-zA-Z0-9+.-]*://.*")) {
            throw new IllegalArgumentException("Unsupported storage location '" + location
                    + "': use s3://bucket/prefix, file:///path or a local path");
        }
        return Path.of(location);
    }
}
