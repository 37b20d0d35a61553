package io.modelmerge.storage.checkpoint;

import java.io.IOException;

/** A checkpoint whose files do not fit together: a bad index, a missing shard, an adapter that makes no sense. */
public final class InvalidCheckpointException extends IOException {
    public InvalidCheckpointException(String message) {
        super(message);
    }
}
