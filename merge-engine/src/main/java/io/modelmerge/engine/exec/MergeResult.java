package io.modelmerge.engine.exec;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/** A finished merge: where it is, what it holds, and what the user should know about it. */
public record MergeResult(Path output, List<String> files, int tensors, long tensorBytes, Duration elapsed,
                          List<String> notes) {
    public MergeResult {
        files = List.copyOf(files);
        notes = List.copyOf(notes);
    }
}
