package io.modelmerge.storage.testing;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the shared real fixtures are: {@code ../shared/fixtures/real} beside the project. */
public final class Fixtures {
    private Fixtures() {
    }

    public static Path real() {
        String configured = System.getProperty("modelmerge.fixtures");
        Path path = configured != null ? Path.of(configured) : Path.of("..", "..", "shared", "fixtures", "real");
        path = path.toAbsolutePath().normalize();
        if (!Files.isRegularFile(path.resolve("MANIFEST.md"))) {
            throw new IllegalStateException("Real fixtures not found at " + path
                    + ": the project expects ../shared/fixtures/real beside its root");
        }
        return path;
    }

    public static Path real(String name) {
        return real().resolve(name);
    }
}
