package io.modelmerge.mergeservice.evaluation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.search.Candidate;
import io.modelmerge.engine.search.EvaluationFailedException;
import io.modelmerge.engine.search.Score;
import io.modelmerge.engine.testing.DigitsMlp.Digits;
import io.modelmerge.engine.testing.DigitsMlp;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
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
    private static ExampleEvaluatorProcess evaluator;
    private static URI url;

    @TempDir
    static Path dir;

    @BeforeAll
    static void start() throws Exception {
        evaluator = ExampleEvaluatorProcess.start(dir, SECRET);
        url = evaluator.url();
    }

    @AfterAll
    static void stop() {
        if (evaluator != null) {
            evaluator.close();
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
        Path model = DigitsMlp.save(w, dir.resolve("centroids"));
        Score score = evaluator(SECRET).score(candidate(model, Candidate.SELECTION_SPLIT,
                Instant.now().plus(Duration.ofMinutes(1))));
        // numpy's float32 sums against the engine's: a near tie may go the other way, one example at most
        assertEquals(DigitsMlp.accuracy(w, digits, 1200, 1500), score.value(), 1.0 / 300 + 1e-12);
        assertTrue(score.value() > 0.8, "a nearest-centroid classifier scores well above chance: " + score.value());
        assertEquals(300.0, score.metrics().get("examples"));
        assertEquals("digits@1", evaluator(SECRET).id());
    }

    @Test
    void aRequestSignedWithAnotherSecretIsRefused() throws Exception {
        Path model = DigitsMlp.save(centroidClassifier(Digits.load()), dir.resolve("refused"));
        EvaluationFailedException e = assertThrows(EvaluationFailedException.class, () -> evaluator("not-the-secret")
                .score(candidate(model, Candidate.SELECTION_SPLIT, Instant.now().plus(Duration.ofMinutes(1)))));
        assertTrue(e.getMessage().contains("401") && e.getMessage().contains("bad signature"), e.getMessage());
    }

    /** An evaluator nobody listens for fails the candidate, saying why (a refused connection has no message). */
    @Test
    void anEvaluatorThatCannotBeReachedFailsTheCandidateSayingWhy() throws Exception {
        int port;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = socket.getLocalPort();
        }
        HttpEvaluator nobody = new HttpEvaluator("digits", "1", URI.create("http://127.0.0.1:" + port + "/"), SECRET,
                HttpClient.newHttpClient(), Clock.systemUTC());
        EvaluationFailedException e = assertThrows(EvaluationFailedException.class, () -> nobody.score(
                candidate(dir, Candidate.SELECTION_SPLIT, Instant.now().plus(Duration.ofMinutes(1)))));
        // (were the freed port taken meanwhile, whatever answered would fail the candidate too, with its answer)
        assertTrue(e.getMessage().startsWith("digits@1") && !e.getMessage().endsWith("null"), e.getMessage());
    }

    @Test
    void anUnknownSplitOrAPassedDeadlineGetsNoScore() throws Exception {
        Path model = DigitsMlp.save(centroidClassifier(Digits.load()), dir.resolve("split"));
        EvaluationFailedException unknown = assertThrows(EvaluationFailedException.class, () -> evaluator(SECRET)
                .score(candidate(model, "train", Instant.now().plus(Duration.ofMinutes(1)))));
        assertTrue(unknown.getMessage().contains("400") && unknown.getMessage().contains("train"),
                unknown.getMessage());
        EvaluationFailedException late = assertThrows(EvaluationFailedException.class, () -> evaluator(SECRET)
                .score(candidate(model, Candidate.SELECTION_SPLIT, Instant.now().minusSeconds(1))));
        assertTrue(late.getMessage().contains("deadline"), late.getMessage());
    }
}
