package io.modelmerge.storage.safetensors;

import java.io.IOException;

/** A safetensors file that breaks a rule of the format. The message names the file, the tensor and the rule. */
public final class SafetensorsFormatException extends IOException {
    private final String file;
    private final String tensor;
    private final String problem;

    public SafetensorsFormatException(String file, String tensor, String problem) {
        super(file + ": " + (tensor == null ? "" : "tensor '" + tensor + "': ") + problem);
        this.file = file;
        this.tensor = tensor;
        this.problem = problem;
    }

    public SafetensorsFormatException(String file, String problem) {
        this(file, null, problem);
    }

    public String file() {
        return file;
    }

    /** The tensor the problem is in, or null when it concerns the file as a whole. */
    public String tensor() {
        return tensor;
    }

    public String problem() {
        return problem;
    }
}
