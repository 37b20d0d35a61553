package io.modelmerge.storage.blob;

import java.io.IOException;
import java.net.URI;
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
     * Splits {@code location} into a store and a key: a local file becomes its directory's store and its name, a
     * local directory a store rooted there (under {@code roots}: the root's store, confined to it, and the path's
     * key), an S3 prefix a store rooted there. An S3 location is a file when it ends in {@code .safetensors}.
     */
    public static Located locate(String location, S3Settings s3, LocalRoots roots) throws IOException {
        if (location.startsWith("s3://")) {
            try {
                if (location.endsWith(".safetensors")) {
                    int slash = location.lastIndexOf('/');
                    return new Located(S3BlobStore.open(URI.create(location.substring(0, slash + 1)), s3),
                            location.substring(slash + 1), true);
                }
                return new Located(S3BlobStore.open(URI.create(location), s3), "", false);
            } catch (IllegalArgumentException e) {
                throw new UnsupportedLocationException("'" + location + "' is not a valid S3 URI: " + e.getMessage());
            }
        }
        return roots.locate(localPath(location), location);
    }

    /** Opens {@code location} with any local path allowed: for the command line. */
    public static Located locate(String location, S3Settings s3) throws IOException {
        return locate(location, s3, LocalRoots.anywhere());
    }

    private static Path localPath(String location) throws UnsupportedLocationException {
        try {
            if (location.startsWith("file:")) {
                return Path.of(URI.create(location));
            }
            if (location.matches("^[a-zA-Z][a-zA-Z0-9+.-]*://.*")) {
                throw new UnsupportedLocationException("'" + location
                        + "' is not a storage location: use s3://bucket/prefix/, file:///path/ or a local path");
            }
            return Path.of(location);
        } catch (IllegalArgumentException e) { // a malformed URI, or a path with a NUL
            throw new UnsupportedLocationException("'" + location + "' is not a valid path or file: URI");
        }
    }

    /** A location that is neither a local path, a {@code file:} URI nor an {@code s3://} URI. */
    public static final class UnsupportedLocationException extends IOException {
        public UnsupportedLocationException(String message) {
            super(message);
        }
    }
}
