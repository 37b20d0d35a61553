package io.modelmerge.storage.blob;

import java.io.IOException;

/** Bytes that arrived are not the bytes that were sent: their CRC32C differs. */
public final class ChecksumMismatchException extends IOException {
    public ChecksumMismatchException(String message) {
        super(message);
    }
}
