package io.modelmerge.engine.exec;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import java.io.IOException;
import java.nio.file.Path;

/** A tensor of a written checkpoint, widened to F32, for tests to compare. */
final class StoredTensors {
    private StoredTensors() {
    }

    /** Tensor {@code name} of {@code dir}'s {@code model.safetensors}. */
    static float[] tensor(Path dir, String name) throws IOException {
        return tensor(dir, "model.safetensors", name);
    }

    /** Tensor {@code name} of the safetensors file {@code file} in {@code dir}. */
    static float[] tensor(Path dir, String file, String name) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(file))) {
            return Floats.widen(f.tensor(name));
        }
    }
}
