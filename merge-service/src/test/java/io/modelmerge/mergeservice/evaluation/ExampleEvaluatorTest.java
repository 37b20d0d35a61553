package io.modelmerge.mergeservice.evaluation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.search.Candidate;
import io.modelmerge.engine.search.EvaluationFailedException;
import io.modelmerge.engine.search.Score;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsLayout;
import io.modelmerge.storage.safetensors.SafetensorsWriter;
import io.modelmerge.storage.safetensors.TensorSpec;
import io.modelmerge.storage.testing.Fixtures;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.URI;
import java.net.http.HttpClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The example evaluator (deploy/examples/evaluator/evaluator.py) run as a process and called as the merge service
 * calls evaluators: a nearest-centroid classifier computed here from the digits' training rows and written as
 * the MLP the evaluator reads gets the accuracy computed here on the validation rows; a request signed with
 * another secret, an unknown split and a passed deadline get no score.
 */
class ExampleEvaluatorTest {
    private static final String SECRET = "evaluator-secret";
    private static Process evaluator;
    private static URI url;

    @TempDir
    static Path dir;

    @BeforeAll
    static void start() throws Exception {
        Path secret = dir.resolve("secret");
        Files.writeString(secret, SECRET + "\n");
        Path data = Fixtures.real().getParent().resolve("data/digits/digits.csv.gz");
        evaluator = new ProcessBuilder("python3", Path.of("..", "deploy", "examples", "evaluator", "evaluator.py")
                .toString(), "--data", data.toString(), "--secret-file", secret.toString(), "--port", "0")
                .redirectErrorStream(true).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(evaluator.getInputStream(),
                StandardCharsets.UTF_8));
        String line = out.readLine();
        if (line == null || !line.startsWith("listening on ")) {
            throw new IllegalStateException("the example evaluator did not start: " + line);
        }
        url = URI.create("http://127.0.0.1:" + line.substring("listening on ".length()).trim() + "/");
    }

    @AfterAll
    static void stop() {
        if (evaluator != null) {
            evaluator.destroy();
        }
    }

    private record Digits(float[][] x, int[] y) {
        static Digits load() throws Exception {
            Path csv = Fixtures.real().getParent().resolve("data/digits/digits.csv.gz");
            List<float[]> xs = new ArrayList<>();
            List<Integer> ys = new ArrayList<>();
            try (BufferedReader in = new BufferedReader(new InputStreamReader(new GZIPInputStream(
                    Files.newInputStream(csv)), StandardCharsets.US_ASCII))) {
                for (String line; (line = in.readLine()) != null; ) {
                    String[] cells = line.split(",");
                    float[] pixels = new float[64];
                    for (int i = 0; i < 64; i++) {
                        pixels[i] = Float.parseFloat(cells[i]) / 16f;
                    }
                    xs.add(pixels);
                    ys.add((int) Float.parseFloat(cells[64]));
                }
            }
            return new Digits(xs.toArray(float[][]::new), ys.stream().mapToInt(Integer::intValue).toArray());
        }
    }

    /**
     * Class centroids c of the training rows as fc1 (bias −|c|²/2, so each hidden unit is x·c − |c|²/2 before
     * the ReLU) and the identity as fc2; returns its weights by name.
     */
    private static Map<String, float[]> centroidClassifier(Digits digits) {
        float[] centroids = new float[10 * 64];
        int[] counts = new int[10];
        for (int r = 0; r < 1200; r++) {
            counts[digits.y()[r]]++;
            for (int p = 0; p < 64; p++) {
                centroids[digits.y()[r] * 64 + p] += digits.x()[r][p];
            }
        }
        float[] bias = new float[10];
        for (int c = 0; c < 10; c++) {
            double squared = 0;
            for (int p = 0; p < 64; p++) {
                centroids[c * 64 + p] /= counts[c];
                squared += centroids[c * 64 + p] * centroids[c * 64 + p];
            }
            bias[c] = (float) (-squared / 2);
        }
        float[] identity = new float[100];
        for (int c = 0; c < 10; c++) {
            identity[c * 10 + c] = 1;
        }
        Map<String, float[]> w = new LinkedHashMap<>();
        w.put("fc1.weight", centroids);
        w.put("fc1.bias", bias);
        w.put("fc2.weight", identity);
        w.put("fc2.bias", new float[10]);
        return w;
    }

    /** Correct predictions of the MLP on rows [from, to), in double. */
    private static int correct(Map<String, float[]> w, Digits digits, int from, int to) {
        int correct = 0;
        for (int r = from; r < to; r++) {
            double[] hidden = new double[10];
            for (int h = 0; h < 10; h++) {
                double sum = w.get("fc1.bias")[h];
                for (int p = 0; p < 64; p++) {
                    sum += w.get("fc1.weight")[h * 64 + p] * (double) digits.x()[r][p];
                }
                hidden[h] = Math.max(0, sum);
            }
            int best = 0;
            double bestLogit = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < 10; c++) {
                double logit = w.get("fc2.bias")[c];
                for (int h = 0; h < 10; h++) {
                    logit += w.get("fc2.weight")[c * 10 + h] * hidden[h];
                }
                if (logit > bestLogit) {
                    bestLogit = logit;
                    best = c;
                }
            }
            correct += best == digits.y()[r] ? 1 : 0;
        }
        return correct;
    }

    private static Path save(Map<String, float[]> w, Path modelDir) throws Exception {
        Files.createDirectories(modelDir);
        List<TensorSpec> specs = List.of(new TensorSpec("fc1.weight", DType.F32, new long[] {10, 64}),
                new TensorSpec("fc1.bias", DType.F32, new long[] {10}),
                new TensorSpec("fc2.weight", DType.F32, new long[] {10, 10}),
                new TensorSpec("fc2.bias", DType.F32, new long[] {10}));
        try (SafetensorsWriter writer = SafetensorsWriter.create(modelDir.resolve("model.safetensors"),
                SafetensorsLayout.of(specs, Map.of()))) {
            for (TensorSpec spec : specs) {
                float[] values = w.get(spec.name());
                MemorySegment bytes = MemorySegment.ofArray(new byte[values.length * 4]);
                for (int i = 0; i < values.length; i++) {
                    bytes.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, values[i]);
                }
                writer.write(spec.name(), 0, bytes);
            }
            writer.commit();
        }
        return modelDir;
    }

    private static HttpEvaluator evaluator(String secret) {
        return new HttpEvaluator("digits", "1", url, secret, HttpClient.newHttpClient(), Clock.systemUTC());
    }

    private static Candidate candidate(Path model, String split, Instant deadline) {
        return new Candidate("team/digits@1", "sha256:00", model.toString(), split, deadline);
    }

    @Test
    void aSignedRequestGetsTheClassifiersHeldOutAccuracy() throws Exception {
        Digits digits = Digits.load();
        Map<String, float[]> w = centroidClassifier(digits);
        Path model = save(w, dir.resolve("centroids"));
        Score score = evaluator(SECRET).score(candidate(model, Candidate.SELECTION_SPLIT,
                Instant.now().plus(Duration.ofMinutes(1))));
        int correct = correct(w, digits, 1200, 1500);
        // float32 in the evaluator against double here: a near tie may go the other way, one example at most
        assertEquals(correct / 300.0, score.value(), 1.0 / 300 + 1e-12);
        assertTrue(score.value() > 0.8, "a nearest-centroid classifier scores well above chance: " + score.value());
        assertEquals(300.0, score.metrics().get("examples"));
        assertEquals("digits@1", evaluator(SECRET).id());
    }

    @Test
    void aRequestSignedWithAnotherSecretIsRefused() throws Exception {
        Path model = save(centroidClassifier(Digits.load()), dir.resolve("refused"));
        EvaluationFailedException e = assertThrows(EvaluationFailedException.class, () -> evaluator("not-the-secret")
                .score(candidate(model, Candidate.SELECTION_SPLIT, Instant.now().plus(Duration.ofMinutes(1)))));
        assertTrue(e.getMessage().contains("401") && e.getMessage().contains("bad signature"), e.getMessage());
    }

    @Test
    void anUnknownSplitOrAPassedDeadlineGetsNoScore() throws Exception {
        Path model = save(centroidClassifier(Digits.load()), dir.resolve("split"));
        EvaluationFailedException unknown = assertThrows(EvaluationFailedException.class, () -> evaluator(SECRET)
                .score(candidate(model, "train", Instant.now().plus(Duration.ofMinutes(1)))));
        assertTrue(unknown.getMessage().contains("400") && unknown.getMessage().contains("train"),
                unknown.getMessage());
        EvaluationFailedException late = assertThrows(EvaluationFailedException.class, () -> evaluator(SECRET)
                .score(candidate(model, Candidate.SELECTION_SPLIT, Instant.now().minusSeconds(1))));
        assertTrue(late.getMessage().contains("deadline"), late.getMessage());
    }
}
