package io.modelmerge.storage.blob;

import java.io.IOException;

/** A location that is neither a local path, a {@code file:} URI nor an {@code s3://} URI, or one malformed. */
public final class UnsupportedLocationException extends IOException {
    public UnsupportedLocationException(String message) {
        super(message);
    }
}
