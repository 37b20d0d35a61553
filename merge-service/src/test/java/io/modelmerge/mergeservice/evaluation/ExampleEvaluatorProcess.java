package io.modelmerge.mergeservice.evaluation;

import io.modelmerge.storage.testing.Fixtures;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The example evaluator (deploy/examples/evaluator/evaluator.py) running as a process on a free 127.0.0.1 port,
 * over the real digits, checking signatures with {@code secret}.
 */
public record ExampleEvaluatorProcess(Process process, URI url) implements AutoCloseable {

    /** Starts it, its secret written under {@code dir}; returns once it serves. */
    public static ExampleEvaluatorProcess start(Path dir, String secret) throws Exception {
        Path secretFile = dir.resolve("evaluator-secret");
        Files.writeString(secretFile, secret + "\n");
        Path data = Fixtures.real().getParent().resolve("data/digits/digits.csv.gz");
        Process process = new ProcessBuilder("python3", Path.of("..", "deploy", "examples", "evaluator",
                "evaluator.py").toString(), "--data", data.toString(), "--secret-file", secretFile.toString(),
                "--port", "0").redirectErrorStream(true).start();
        String line = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))
                .readLine();
        if (line == null || !line.startsWith("listening on ")) {
            process.destroy();
            throw new IllegalStateException("the example evaluator did not start: " + line);
        }
        return new ExampleEvaluatorProcess(process, URI.create("http://127.0.0.1:"
                + line.substring("listening on ".length()).trim() + "/"));
    }

    @Override
    public void close() {
        process.destroy();
    }
}
