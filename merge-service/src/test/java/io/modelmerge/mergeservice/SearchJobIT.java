package io.modelmerge.mergeservice;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.engine.testing.DigitsMlp;
import io.modelmerge.engine.testing.DigitsMlp.Digits;
import io.modelmerge.proto.v1.Evaluator;
import io.modelmerge.proto.v1.Job;
import io.modelmerge.proto.v1.JobEvent;
import io.modelmerge.proto.v1.JobRef;
import io.modelmerge.proto.v1.JobState;
import io.modelmerge.proto.v1.ListEvaluatorsRequest;
import io.modelmerge.proto.v1.RegisterEvaluatorRequest;
import io.modelmerge.mergeservice.evaluation.ExampleEvaluatorProcess;
import io.modelmerge.registry.client.Signatures;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Searches as jobs: the example evaluator (deploy/examples/evaluator/evaluator.py) runs as a process and is
 * registered over gRPC; digits MLPs trained here are registered as versions; greedy_soup and evolve jobs choose
 * their merge by its scores, stage candidates where it reads them and delete them after, and register a version
 * recording the evaluator, every score and the models it is made of.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class SearchJobIT {
    private static final String SECRET = "search-it-evaluator-secret";
    private static final int TRAIN = 1200;
    private static final int VALIDATION = 1500;

    private static Path work;
    private static Path outputs;
    private static ExampleEvaluatorProcess evaluator;
    private static String evaluatorUrl;
    private static TestSystem system;
    private static Digits digits;

    @BeforeAll
    static void start() throws Exception {
        work = Files.createTempDirectory("search-it-");
        Path local = work.resolve("local");
        outputs = local.resolve("outputs");
        Files.createDirectories(outputs);
        Map<String, String> registryEnv = new LinkedHashMap<>();
        registryEnv.put("MODELMERGE_DATA_DIR", work.resolve("registry").toString());
        registryEnv.put("MODELMERGE_REGISTRY_LOCAL_ROOTS", local.toString());
        Map<String, String> mergeEnv = new LinkedHashMap<>();
        mergeEnv.put("MODELMERGE_DATA_DIR", work.resolve("merge").toString());
        mergeEnv.put("MODELMERGE_MERGE_LOCAL_ROOTS", local.toString());
        mergeEnv.put("MODELMERGE_MERGE_OUTPUT_ROOT", outputs.toUri().toString());
        mergeEnv.put("MODELMERGE_MERGE_LEASE", "PT3S");
        mergeEnv.put("MODELMERGE_MERGE_POLL_INTERVAL", "PT0.2S");
        system = TestSystem.start(work, registryEnv, mergeEnv);

        evaluator = ExampleEvaluatorProcess.start(work, SECRET);
        evaluatorUrl = evaluator.url().toString();

        // a base trained on every class and four fine-tunes of it on quarters of the training rows, registered
        digits = Digits.load();
        Map<String, float[]> base = DigitsMlp.init(32, 3);
        DigitsMlp.train(base, digits, TRAIN, label -> true, 20, 0.5f);
        register("digits/base", DigitsMlp.save(base, local.resolve("base")), List.of(), "checkpoint");
        for (int m = 0; m < 4; m++) {
            int quarter = m;
            Map<String, float[]> w = DigitsMlp.copy(base);
            DigitsMlp.trainOnRows(w, digits, TRAIN, r -> r % 4 == quarter, 40 + 20 * m, 0.5f - 0.1f * m);
            register("digits/ft-" + m, DigitsMlp.save(w, local.resolve("ft-" + m)),
                    List.of(Map.of("ref", "digits/base@1", "relation", "finetune")), "checkpoint");
            // RegMean's Grams of its inputs, from its own training rows, as a version of format gram
            register("digits/ft-" + m + "-gram", DigitsMlp.grams(w, digits, TRAIN, r -> r % 4 == quarter,
                    local.resolve("ft-" + m + "-gram")), List.of(Map.of("ref", "digits/ft-" + m + "@1",
                    "relation", "gram_of")), "gram");
        }
    }

    private static void register(String model, Path dir, List<Map<String, String>> parents, String format)
            throws Exception {
        system.post("models", Map.of("name", model));
        system.post("models/" + model + "/versions", Map.of("storage_uri", dir.toUri().toString(), "parents", parents,
                "format", format));
    }

    @AfterAll
    static void stop() throws Exception {
        if (evaluator != null) {
            evaluator.close();
        }
        if (system != null) {
            system.close();
        }
        TestSystem.deleteTree(work);
    }

    private static final String SOUP = """
            merge_method: greedy_soup
            parameters: {evaluator: digits/accuracy@1, evaluation_timeout: 60}
            models: [{model: digits/ft-0@1}, {model: digits/ft-1@1}, {model: digits/ft-2@1}, {model: digits/ft-3@1}]
            """;

    private static String evolve(int budget) {
        return """
                merge_method: evolve
                base_model: digits/base@1
                parameters: {evaluator: digits/accuracy@1, method: task_arithmetic, budget: %d, parallel: 2}
                models:
                  - {model: digits/ft-0@1, parameters: {weight: [0, 1]}}
                  - {model: digits/ft-1@1, parameters: {weight: [0, 1]}}
                  - {model: digits/ft-2@1, parameters: {weight: [0, 1]}}
                """.formatted(budget);
    }

    @Test
    @Order(1)
    void evaluatorsAreRegisteredByANamespacesAdminAndListedWithoutTheirSecret() throws Exception {
        RegisterEvaluatorRequest request = RegisterEvaluatorRequest.newBuilder().setEvaluator(Evaluator.newBuilder()
                .setName("digits/accuracy").setVersion("1").setUrl(evaluatorUrl)).setSecret(SECRET).build();
        String writer = system.call("POST", "tokens", Map.of("name", "writer", "scopes", List.of("read", "write",
                "submit"), "namespaces", List.of("digits/*")), 201).get("token").asText();
        StatusRuntimeException denied = assertThrows(StatusRuntimeException.class, () ->
                TestSystem.stub(system.channel, writer).registerEvaluator(request));
        assertEquals(Status.Code.PERMISSION_DENIED, denied.getStatus().getCode());
        assertTrue(denied.getMessage().contains("register evaluators in namespace digits"), denied.getMessage());
        StatusRuntimeException shortSecret = assertThrows(StatusRuntimeException.class, () -> system.jobs
                .registerEvaluator(request.toBuilder().setSecret("short").build()));
        assertEquals(Status.Code.INVALID_ARGUMENT, shortSecret.getStatus().getCode());
        StatusRuntimeException badUrl = assertThrows(StatusRuntimeException.class, () -> system.jobs
                .registerEvaluator(request.toBuilder().setEvaluator(request.getEvaluator().toBuilder()
                        .setUrl("file:///etc/passwd")).build()));
        assertEquals(Status.Code.INVALID_ARGUMENT, badUrl.getStatus().getCode());

        Evaluator registered = system.jobs.registerEvaluator(request);
        assertEquals("digits/accuracy", registered.getName());
        assertEquals(evaluatorUrl, registered.getUrl());
        List<Evaluator> listed = TestSystem.stub(system.channel, writer)
                .listEvaluators(ListEvaluatorsRequest.getDefaultInstance()).getEvaluatorsList();
        assertEquals(1, listed.size());
        assertFalse(listed.getFirst().toString().contains(SECRET), listed.getFirst().toString());

        // a search naming an evaluator nobody registered is refused before it is queued
        StatusRuntimeException unknown = assertThrows(StatusRuntimeException.class, () -> system.jobs.submitMerge(
                TestSystem.request(SOUP.replace("accuracy@1", "accuracy@2"), "digits/soup")));
        assertEquals(Status.Code.NOT_FOUND, unknown.getStatus().getCode());
        assertTrue(unknown.getMessage().contains("no evaluator digits/accuracy@2"), unknown.getMessage());
    }

    @Test
    @Order(2)
    void aGreedySoupJobRegistersTheSoupWithEveryScoreAndItsIngredients() throws Exception {
        Job job = system.jobs.submitMerge(TestSystem.request(SOUP, "digits/soup"));
        List<Job> seen = follow(job.getId());
        Job done = seen.getLast();
        assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
        assertEquals(7, done.getProgress().getCandidatesTotal(), "2N - 1 candidates at most");
        assertEquals(7, done.getProgress().getCandidatesDone());

        JsonNode version = system.get("models/digits/soup/versions/1");
        JsonNode search = version.get("parameters").get("search");
        assertEquals("digits/accuracy@1", version.get("parameters").get("evaluator").asText());
        assertEquals(7, search.get("evaluations").asInt(), "four ingredients and three soups, nothing cached yet");
        assertEquals(4, search.get("decisions").size());
        List<String> soup = new ArrayList<>();
        search.get("soup").forEach(s -> soup.add(s.asText()));
        List<String> parents = new ArrayList<>();
        version.get("parents").forEach(p -> parents.add(p.get("ref").asText()));
        assertEquals(soup.stream().sorted().toList(), parents.stream().sorted().toList(), "its parents are the soup's");
        // the score it records is the registered model's own validation accuracy, computed here
        Path stored = Path.of(URI.create(version.get("storage_uri").asText()));
        double accuracy = DigitsMlp.accuracy(DigitsMlp.read(stored), digits, TRAIN, VALIDATION);
        assertEquals(accuracy, search.get("score").asDouble(), 1.0 / 300 + 1e-12);
        assertEquals(search.get("score").asDouble(), version.get("metrics").get("score").asDouble(), 0);
        List<String> files = new ArrayList<>();
        version.get("files").forEach(f -> files.add(f.get("path").asText()));
        assertTrue(files.contains("greedy_soup.json"), "the report is one of the version's files: " + files);
        assertEquals(List.of(), candidatesLeft(), "staged candidates are deleted after the job");

        // the same ingredients again: every score is stored, nothing is sent; submitted twice under one key, one job
        var keyed = TestSystem.request(SOUP, "digits/soup-again").toBuilder().setIdempotencyKey("soup-again").build();
        String first = system.jobs.submitMerge(keyed).getId();
        assertEquals(first, system.jobs.submitMerge(keyed).getId());
        Job again = follow(first).getLast();
        assertEquals(JobState.SUCCEEDED, again.getState(), again.getError());
        assertEquals(0, system.get("models/digits/soup-again/versions/1").get("parameters").get("search")
                .get("evaluations").asInt());
    }

    @Test
    @Order(3)
    void anEvolveJobWritesItsBestRecipeAndCanBeCancelled() throws Exception {
        Job done = follow(system.jobs.submitMerge(TestSystem.request(evolve(6), "digits/evolved")).getId()).getLast();
        assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
        assertEquals(6, done.getProgress().getCandidatesDone());
        assertTrue(done.getProgress().hasBestScore());
        JsonNode version = system.get("models/digits/evolved/versions/1");
        assertEquals(6, version.get("parameters").get("search").get("trials").size());
        Path stored = Path.of(URI.create(version.get("storage_uri").asText()));
        String recipe = Files.readString(stored.resolve("evolved_recipe.yml"));
        assertTrue(recipe.contains("merge_method: task_arithmetic") && recipe.contains("digits/ft-2@1"), recipe);
        assertEquals(done.getProgress().getBestScore(), version.get("metrics").get("score").asDouble(), 0);
        assertEquals(List.of("digits/base@1", "digits/ft-0@1", "digits/ft-1@1", "digits/ft-2@1"),
                sorted(version.get("parents")));

        // a long search shows its progress while it runs; cancelled then, it ends CANCELLED leaving nothing behind
        Job running = system.jobs.submitMerge(TestSystem.request(evolve(400), "digits/cancelled"));
        Iterator<JobEvent> events = system.jobs.withDeadlineAfter(120, TimeUnit.SECONDS)
                .watchJob(JobRef.newBuilder().setId(running.getId()).build());
        while (events.hasNext() && events.next().getJob().getProgress().getCandidatesDone() == 0) {
            // until a candidate is scored
        }
        system.jobs.cancelJob(JobRef.newBuilder().setId(running.getId()).build());
        Job cancelled = system.watch(running.getId());
        assertEquals(JobState.CANCELLED, cancelled.getState());
        assertEquals(404, system.status("models/digits/cancelled/versions/1"));
        assertEquals(List.of(), candidatesLeft());
    }

    /**
     * A regmean job naming its Grams by registry ref (versions of format gram): they are pinned and read like
     * models, and the output is the one the engine writes here from the same files by path.
     */
    @Test
    @Order(4)
    void aRegMeanJobReadsGramVersionsByRef() throws Exception {
        StringBuilder byRef = new StringBuilder("merge_method: regmean\nmodels:\n");
        StringBuilder byPath = new StringBuilder("merge_method: regmean\nmodels:\n");
        for (int m = 0; m < 4; m++) {
            byRef.append("  - {model: digits/ft-").append(m).append("@1, parameters: {gram: digits/ft-").append(m)
                    .append("-gram@1}}\n");
            Path local = work.resolve("local");
            byPath.append("  - {model: \"").append(local.resolve("ft-" + m)).append("\", parameters: {gram: \"")
                    .append(local.resolve("ft-" + m + "-gram")).append("\"}}\n");
        }
        Job done = follow(system.jobs.submitMerge(TestSystem.request(byRef.toString(), "digits/regmean")).getId())
                .getLast();
        assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
        assertEquals("digits/ft-0-gram@1", done.getPinnedInputsMap().get("digits/ft-0-gram@1"));
        Path here = work.resolve("regmean-here");
        new MergeExecutor(MergeOptions.defaults(), p -> { },
                new AtomicBoolean()).run(
                RecipeParser.parse(byPath.toString()), here);
        Path stored = Path.of(URI.create(system.get("models/digits/regmean/versions/1").get("storage_uri")
                .asText()));
        assertTrue(Arrays.equals(Files.readAllBytes(here.resolve("model.safetensors")),
                Files.readAllBytes(stored.resolve("model.safetensors"))), "the service's regmean is the engine's");
    }

    /**
     * An evaluator that answers 202 and sends each score back later to the service's callback URL: the same soup
     * as when it answers at once (its scores are its own, under its name); a callback with a bad signature, for
     * an unknown evaluator or without a score is refused.
     */
    @Test
    @Order(5)
    void anEvaluatorThatAnswersLaterSendsItsScoresByCallback() throws Exception {
        system.jobs.registerEvaluator(RegisterEvaluatorRequest.newBuilder().setEvaluator(Evaluator.newBuilder()
                .setName("digits/accuracy-later").setVersion("1").setUrl(evaluatorUrl + "later")).setSecret(SECRET)
                .build());
        Job done = follow(system.jobs.submitMerge(TestSystem.request(SOUP.replace("digits/accuracy@1",
                "digits/accuracy-later@1"), "digits/soup-later")).getId()).getLast();
        assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
        JsonNode later = system.get("models/digits/soup-later/versions/1").get("parameters").get("search");
        JsonNode now = system.get("models/digits/soup/versions/1").get("parameters").get("search");
        assertEquals(7, later.get("evaluations").asInt(), "another evaluator: nothing of the first's is reused");
        assertEquals(now.get("soup"), later.get("soup"));
        assertEquals(now.get("score").asDouble(), later.get("score").asDouble(), 0);

        String body = "{\"evaluator\": \"digits/accuracy-later@1\", \"content_digest\": \"sha256:00\", \"score\": 1.0}";
        long now1 = Instant.now().getEpochSecond();
        assertEquals(401, callback(body, now1, Signatures.sign("another-secret-entirely",
                now1, body)));
        assertEquals(401, callback(body, now1 - 3600, Signatures.sign(SECRET,
                now1 - 3600, body)));
        String unknown = body.replace("accuracy-later@1", "accuracy-later@9");
        assertEquals(404, callback(unknown, now1, Signatures.sign(SECRET, now1, unknown)));
        String scoreless = "{\"evaluator\": \"digits/accuracy-later@1\", \"content_digest\": \"sha256:00\"}";
        assertEquals(400, callback(scoreless, now1, Signatures.sign(SECRET, now1,
                scoreless)));
        assertEquals(204, callback(body, now1, Signatures.sign(SECRET, now1, body)));
    }

    private static int callback(String body, long timestamp, String signature) throws Exception {
        java.net.http.HttpRequest request = HttpRequest.newBuilder(URI.create(
                        "http://127.0.0.1:" + system.merge.port() + "/evaluations/callback"))
                .header("Content-Type", "application/json")
                .header("X-Modelmerge-Timestamp", Long.toString(timestamp))
                .header("X-Modelmerge-Signature", signature)
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        return HttpClient.newHttpClient().send(request,
                HttpResponse.BodyHandlers.discarding()).statusCode();
    }

    private static List<Job> follow(String id) {
        List<Job> seen = new ArrayList<>();
        Iterator<JobEvent> events = system.jobs.withDeadlineAfter(300, TimeUnit.SECONDS)
                .watchJob(JobRef.newBuilder().setId(id).build());
        events.forEachRemaining(e -> seen.add(e.getJob()));
        return seen;
    }

    private static List<String> sorted(JsonNode parents) {
        List<String> refs = new ArrayList<>();
        parents.forEach(p -> refs.add(p.get("ref").asText()));
        return refs.stream().sorted().toList();
    }

    /** Whatever a search staged for its evaluator that is still in the output store. */
    private static List<Path> candidatesLeft() throws Exception {
        try (Stream<Path> all = Files.walk(outputs)) {
            return all.filter(p -> p.toString().contains(".candidates")).toList();
        }
    }
}
