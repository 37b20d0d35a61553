package io.modelmerge.storage.blob;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/** Local directory trees a process made for itself (staging, work directories) and removes again. */
public final class LocalDirectories {
    private LocalDirectories() {
    }

    /**
     * Deletes {@code dir} and everything under it, deepest first; nothing when it is not there. A file vanishing
     * meanwhile is no error; anything else that stops the walk is thrown (as {@link java.io.UncheckedIOException}
     * when it stops it midway).
     */
    public static void delete(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
