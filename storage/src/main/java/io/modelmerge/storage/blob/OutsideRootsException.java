package io.modelmerge.storage.blob;

import java.io.IOException;

/**
 * A local path a service refuses to read: outside the roots it is configured with, or reached through a symbolic
 * link that leads out of them. The message names the path and the rule, never anything read from the file.
 */
public final class OutsideRootsException extends IOException {
    public OutsideRootsException(String message) {
        super(message);
    }
}
