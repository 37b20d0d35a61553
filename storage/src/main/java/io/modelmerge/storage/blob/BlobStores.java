package io.modelmerge.storage.blob;

import java.net.URI;
import java.nio.file.Path;

/** Opens the store for a location: {@code s3://bucket/prefix}, {@code file:///dir} or a plain local path. */
public final class BlobStores {
    private BlobStores() {
    }

    public static BlobStore open(String location, S3Settings s3) {
        if (location.startsWith("s3://")) {
            return S3BlobStore.open(URI.create(location), s3);
        }
        if (location.startsWith("file:")) {
            return new LocalBlobStore(Path.of(URI.create(location)));
        }
        if (location.contains("://")) {
            throw new IllegalArgumentException("Unsupported storage location '" + location
                    + "': use s3://bucket/prefix, file:///path or a local path");
        }
        return new LocalBlobStore(Path.of(location));
    }
}
