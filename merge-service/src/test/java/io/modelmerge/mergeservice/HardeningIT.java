package io.modelmerge.mergeservice;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.sun.net.httpserver.HttpServer;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.modelmerge.mergeservice.MergeServiceIT.SmallModels;
import io.modelmerge.proto.v1.Job;
import io.modelmerge.proto.v1.JobRef;
import io.modelmerge.proto.v1.JobState;
import io.modelmerge.proto.v1.ListJobsRequest;
import io.modelmerge.proto.v1.ListJobsResponse;
import io.modelmerge.proto.v1.Options;
import io.modelmerge.proto.v1.Output;
import io.modelmerge.proto.v1.SubmitMergeRequest;
import io.modelmerge.service.local.EmbeddedDatabase;
import io.modelmerge.storage.testing.S3ProxyServer;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The defects found by probing the running system as an attacker and as an operator would, each as a test
 * against both services run as processes on one data directory, as {@code deploy/local/up.sh} runs them: local
 * storage, no S3 credentials, and an EC2 instance metadata service of our own that must never be asked.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class HardeningIT {
    private static Path work;
    private static Path data;
    private static Path blobs;
    private static S3ProxyServer s3;
    private static HttpServer imds;
    private static final AtomicInteger IMDS_REQUESTS = new AtomicInteger();
    private static TestSystem system;

    @BeforeAll
    static void startTheSystem() throws Exception {
        work = Files.createTempDirectory("hardening-it-");
        data = work.resolve("data");
        blobs = Files.createDirectories(data.resolve("blobs"));
        s3 = S3ProxyServer.start(work.resolve("s3"), "models");
        imds = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        imds.createContext("/", exchange -> {
            IMDS_REQUESTS.incrementAndGet();
            exchange.sendResponseHeaders(404, -1);
            exchange.close();
        });
        imds.start();
        Map<String, String> common = new LinkedHashMap<>();
        common.put("MODELMERGE_DATA_DIR", data.toString());
        common.put("HOME", Files.createDirectories(work.resolve("home")).toString()); // no ~/.aws
        common.put("AWS_ENDPOINT_URL", s3.endpoint().toString());
        common.put("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:" + imds.getAddress().getPort());
        Map<String, String> mergeEnv = new LinkedHashMap<>(common);
        mergeEnv.put("MODELMERGE_MERGE_LEASE", "PT3S");
        mergeEnv.put("MODELMERGE_MERGE_POLL_INTERVAL", "PT0.2S");
        mergeEnv.put("MODELMERGE_MERGE_MAX_ATTEMPTS", "2");
        mergeEnv.put("MODELMERGE_MERGE_RETRY_DELAY", "PT5S");
        mergeEnv.put("MODELMERGE_MERGE_COMMIT_BACKOFF", "PT1S"); // 6 tries span 31 s: a restart fits in them
        mergeEnv.put("MODELMERGE_MERGE_MAX_BYTES_PER_SECOND", TestSystem.BIG_JOB_RATE);
        system = TestSystem.start(work, common, mergeEnv);

        for (int m = 0; m < 4; m++) {
            String name = m == 0 ? "base" : "ft-" + m;
            Path dir = SmallModels.write(blobs.resolve("models/" + name), m, SmallModels.SMALL);
            system.post("models", Map.of("name", "team/" + name));
            system.post("models/team/" + name + "/versions", Map.of("storage_uri", dir.toUri().toString(),
                    "parents", m == 0 ? List.of() : List.of(Map.of("ref", "team/base@1", "relation", "finetune"))));
        }
        for (int m = 0; m < 3; m++) {
            SmallModels.write(blobs.resolve("models/big-" + m), m, SmallModels.BIG);
        }
    }

    @AfterAll
    static void stopTheSystem() throws Exception {
        if (system != null) {
            system.close();
        }
        if (imds != null) {
            imds.stop(0);
        }
        if (s3 != null) {
            s3.close();
        }
        TestSystem.deleteTree(work);
    }

    private static String linear(String... models) {
        StringBuilder yaml = new StringBuilder("merge_method: linear\nmodels:\n");
        for (String model : models) {
            yaml.append("  - model: ").append(model).append("\n    parameters: {weight: 1.0}\n");
        }
        return yaml.toString();
    }

    private static String bigTies() {
        return "merge_method: ties\nbase_model: " + blobs.resolve("models/big-0") + "\nmodels:\n  - model: "
                + blobs.resolve("models/big-1") + "\n    parameters: {weight: 0.5, density: 0.5}\n  - model: "
                + blobs.resolve("models/big-2") + "\n    parameters: {weight: 0.5, density: 0.5}\n";
    }

    private static StatusRuntimeException refused(SubmitMergeRequest request, Status.Code code) {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> system.jobs.submitMerge(request));
        assertEquals(code, e.getStatus().getCode(), e.getStatus().getDescription());
        return e;
    }

    private static int jobCount() {
        return system.jobs.listJobs(ListJobsRequest.newBuilder().setPageSize(500).build()).getJobsCount();
    }

    /** Files under {@code dir}, recursively (0 for a missing directory). */
    private static long files(Path dir) throws Exception {
        return listing(dir).size();
    }

    private static List<Path> listing(Path dir) throws Exception {
        if (!Files.exists(dir)) {
            return List.of();
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            return walk.filter(Files::isRegularFile).toList();
        }
    }

    private static Path uploads(String model) {
        return blobs.resolve("merged/" + model);
    }

    @Test
    @Order(1)
    void inputsOutsideTheRootsAreRefusedWithoutReadingOrListingThem() throws Exception {
        int before = jobCount();
        Path outside = SmallModels.write(work.resolve("outside/secret-model"), 1, SmallModels.SMALL);
        Files.writeString(outside.resolve("notes.txt"), "private notes");
        Files.writeString(outside.resolve("config.json"), "{\"api_key\": \"s3cr3t\"}");
        Files.createSymbolicLink(blobs.resolve("models/linked"), outside);
        Path environ = Files.createDirectories(blobs.resolve("models/environ"));
        Files.createSymbolicLink(environ.resolve("model.safetensors"), Path.of("/proc/self/environ"));
        for (String input : List.of(outside.toString(), outside.toUri().toString(), "/etc/", "/etc/shadow", "/usr/",
                "/proc/", "/proc/self/environ", blobs.resolve("models/linked").toString(),
                blobs.resolve("models/../../../outside/secret-model").toString(), environ.toString(),
                blobs.resolve("models/base") + "+" + outside)) {
            StatusRuntimeException e = refused(TestSystem.request("merge_method: passthrough\nmodels:\n  - model: "
                    + input + "\n", "team/stolen"), Status.Code.INVALID_ARGUMENT);
            String message = e.getStatus().getDescription();
            assertTrue(message.contains("(modelmerge.merge.local-roots)"), message);
            for (String leak : List.of("passwd", "header length", "notes.txt", "s3cr3t", "bin", "Exception")) {
                assertFalse(message.contains(leak), message);
            }
        }
        refused(TestSystem.request(linear("http://127.0.0.1:1/x"), "team/stolen"), Status.Code.INVALID_ARGUMENT);
        assertEquals(before, jobCount());
        assertEquals(404, system.status("models/team/stolen"));
    }

    @Test
    @Order(2)
    void onlyLayoutFilesOfAnInputAreCopiedIntoTheVersion() throws Exception {
        Path model = SmallModels.write(blobs.resolve("models/with-notes"), 5, SmallModels.SMALL);
        Files.writeString(model.resolve("notes.txt"), "private notes");
        Job done = system.watch(system.jobs.submitMerge(TestSystem.request("merge_method: passthrough\nmodels:\n"
                + "  - model: " + model + "\n", "team/passed")).getId());
        assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
        JsonNode version = system.get("models/team/passed/versions/1");
        List<String> files = new ArrayList<>();
        version.get("files").forEach(f -> files.add(f.get("path").asText()));
        assertEquals(List.of("README.md", "config.json", "merge_recipe.yml", "model.safetensors"), files);
    }

    @Test
    @Order(3)
    void requestsOverTheLimitsAreRefusedAtSubmission() throws Exception {
        String recipe = linear("team/ft-1", "team/ft-2");
        Output.Builder output = Output.newBuilder().setModel("team/limited");
        refused(SubmitMergeRequest.newBuilder().setRecipeYaml(recipe)
                .setOutput(output.clone().setDescription("d".repeat(8193))).build(), Status.Code.INVALID_ARGUMENT);
        Output.Builder tagged = output.clone();
        for (int i = 0; i < 65; i++) {
            tagged.putTags("k" + i, "v");
        }
        StatusRuntimeException tags = refused(SubmitMergeRequest.newBuilder().setRecipeYaml(recipe).setOutput(tagged).build(),
                Status.Code.INVALID_ARGUMENT);
        assertTrue(tags.getStatus().getDescription().contains("65 tags, over the limit of 64"));
        refused(SubmitMergeRequest.newBuilder().setRecipeYaml(recipe).setOutput(output.clone().putTags("k", "v".repeat(257)))
                .build(), Status.Code.INVALID_ARGUMENT);
        refused(SubmitMergeRequest.newBuilder().setRecipeYaml(recipe + "# " + "x".repeat(65 << 10) + "\n")
                .setOutput(output).build(), Status.Code.INVALID_ARGUMENT);
        String[] many = new String[129];
        for (int i = 0; i < many.length; i++) {
            many[i] = "team/ft-" + i;
        }
        refused(TestSystem.request(linear(many), "team/limited"), Status.Code.INVALID_ARGUMENT);
        for (String key : List.of("k".repeat(5000), "nul\u0000key", "space key")) {
            refused(SubmitMergeRequest.newBuilder().setRecipeYaml(recipe).setOutput(output).setIdempotencyKey(key).build(),
                    Status.Code.INVALID_ARGUMENT);
        }
        for (long memory : List.of(1L, 1L << 50)) {
            StatusRuntimeException e = refused(SubmitMergeRequest.newBuilder().setRecipeYaml(recipe).setOutput(output)
                    .setOptions(Options.newBuilder().setMemoryBytes(memory)).build(), Status.Code.INVALID_ARGUMENT);
            assertTrue(e.getStatus().getDescription().startsWith("options.memory_bytes: "), e.getMessage());
        }
        refused(SubmitMergeRequest.newBuilder().setRecipeYaml(recipe).setOutput(output)
                .setOptions(Options.newBuilder().setOutDtype("int4")).build(), Status.Code.INVALID_ARGUMENT);
        assertEquals(404, system.status("models/team/limited"));
    }

    @Test
    @Order(4)
    void anIdempotencyKeyStandsForOneRequest() {
        SubmitMergeRequest first = SubmitMergeRequest.newBuilder().setRecipeYaml(linear("team/ft-1", "team/ft-2"))
                .setOutput(Output.newBuilder().setModel("team/keyed")).setIdempotencyKey("nightly-2026-12-02").build();
        Job job = system.jobs.submitMerge(first);
        assertEquals(job.getId(), system.jobs.submitMerge(first).getId());
        StatusRuntimeException other = refused(first.toBuilder().setRecipeYaml(linear("team/ft-1", "team/ft-3")).build(),
                Status.Code.ALREADY_EXISTS);
        assertTrue(other.getStatus().getDescription().contains(job.getId()), other.getMessage());
        refused(first.toBuilder().setOutput(Output.newBuilder().setModel("team/elsewhere")).build(),
                Status.Code.ALREADY_EXISTS);
        assertEquals(JobState.SUCCEEDED, system.watch(job.getId()).getState());
    }

    @Test
    @Order(5)
    void aMergeThatOverflowsFailsNamingTheTensorAndLeavesNothing() throws Exception {
        String recipe = "merge_method: linear\nmodels:\n  - model: team/ft-1\n    parameters: {weight: 1e308}\n"
                + "  - model: team/ft-2\n    parameters: {weight: 1}\nparameters: {normalize: false}\n";
        Job done = system.watch(system.jobs.submitMerge(TestSystem.request(recipe, "team/overflow")).getId());
        assertEquals(JobState.FAILED, done.getState());
        assertTrue(done.getError().matches("tensor '[a-z_.0-9]+' would hold (NaN|infinity) .*"), done.getError());
        assertEquals(404, system.status("models/team/overflow"), "no model without a version");
        assertEquals(0, files(uploads("team/overflow")));
        assertFalse(Files.exists(uploads("team/overflow")), "no empty folder either");
        assertEquals(0, files(data.resolve("work")));
    }

    @Test
    @Order(6)
    void listingsPageByBytesAndSummariseRecipes() throws Exception {
        Output.Builder heavy = Output.newBuilder().setModel("team/listed").setDescription("d".repeat(8192));
        for (int t = 0; t < 64; t++) {
            heavy.putTags("tag-" + "k".repeat(120) + t, "v".repeat(256));
        }
        Set<String> submitted = new HashSet<>();
        for (int i = 0; i < 40; i++) {
            // Each job is about 33 KB listed; cancelled at once so none of them runs.
            Job job = system.jobs.submitMerge(SubmitMergeRequest.newBuilder().setRecipeYaml(linear("team/ft-1", "team/ft-2"))
                    .setOutput(heavy).setOptions(Options.newBuilder().setPriority(-1)).build());
            system.jobs.cancelJob(JobRef.newBuilder().setId(job.getId()).build());
            submitted.add(job.getId());
        }
        Set<String> seen = new HashSet<>();
        String token = "";
        int pages = 0;
        do {
            ListJobsResponse page = system.jobs.listJobs(ListJobsRequest.newBuilder().setOutputModel("team/listed")
                    .setPageSize(500).setPageToken(token).build());
            assertTrue(page.getSerializedSize() < (1 << 20) + (64 << 10), page.getSerializedSize() + " bytes");
            page.getJobsList().forEach(j -> {
                assertEquals("", j.getRecipeYaml());
                assertEquals("linear of team/ft-1, team/ft-2", j.getRecipeSummary());
                seen.add(j.getId());
            });
            token = page.getNextPageToken();
            pages++;
        } while (!token.isEmpty());
        assertEquals(submitted, seen);
        assertTrue(pages > 1, "40 jobs of 33 KB take more than one page");
        String any = submitted.iterator().next();
        assertEquals(linear("team/ft-1", "team/ft-2"), system.jobs.getJob(JobRef.newBuilder().setId(any).build()).getRecipeYaml());
    }

    /** The registry is down when the merge ends and comes back: registering is tried again until it answers. */
    @Test
    @Order(7)
    void aShortRegistryOutageAtTheEndOfAMergeIsRiddenOut() throws Exception {
        Job job = system.jobs.submitMerge(TestSystem.request(bigTies(), "team/outage"));
        system.waitForProgress(job.getId());
        system.registry.kill();
        // Every tensor merged, so the job is committing, against a registry that is down.
        awaitJob(job.getId(), j -> j.getState() == JobState.RUNNING
                && j.getProgress().getTensorsDone() == j.getProgress().getTensorsTotal());
        system.registry.start();
        Job done = system.watch(job.getId());
        assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
        assertEquals(1, done.getAttempts(), "within the attempt, by retries with backoff");
        assertEquals(1, system.get("models/team/outage/versions").get("total").asInt());
    }

    /** The registry stays down past the retries: the attempt fails, the job waits and its next attempt succeeds. */
    @Test
    @Order(8)
    void aLongerOutageFailsTheAttemptAndTheJobIsRetriedUnderItsAttempts() throws Exception {
        Job job = system.jobs.submitMerge(TestSystem.request(bigTies(), "team/long-outage"));
        system.waitForProgress(job.getId());
        system.registry.kill();
        // MODELMERGE_MERGE_RETRY_DELAY keeps it QUEUED for 5 s: time to look at what the attempt left.
        Job waiting = awaitJob(job.getId(), j -> j.getState() == JobState.QUEUED && !j.getError().isEmpty());
        assertTrue(waiting.getError().contains("registering the version failed 6 times"), waiting.getError());
        assertEquals(0, files(uploads("team/long-outage")), "the failed attempt's uploads are gone");
        system.registry.start();
        Job done = system.watch(job.getId());
        assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
        assertEquals(2, done.getAttempts());
    }

    /** SIGTERM: the merge stops, its job goes back to the queue with its attempt, before the database stops. */
    @Test
    @Order(9)
    void aGracefulStopHandsTheRunningJobBack() throws Exception {
        Job job = system.jobs.submitMerge(TestSystem.request(bigTies(), "team/handed-back"));
        system.waitForProgress(job.getId());
        // Reported, not asserted: how long it takes varies with the machine; that the job came back does not.
        System.out.printf("merge service exited %d ms after SIGTERM%n", system.merge.terminate(60));
        try (EmbeddedPostgres db = EmbeddedDatabase.start(data.resolve("merge-db"));
             Connection c = DriverManager.getConnection(db.getJdbcUrl("postgres", "postgres"));
             ResultSet rs = c.createStatement().executeQuery("SELECT state, attempts, lease_owner FROM merge_job"
                     + " WHERE id = '" + job.getId() + "'")) {
            assertTrue(rs.next());
            assertEquals("QUEUED", rs.getString(1));
            assertEquals(0, rs.getInt(2), "the attempt was given back");
            assertEquals(null, rs.getString(3));
        }
        assertEquals(0, files(data.resolve("work")));
        system.merge.start();
        Job done = system.watch(job.getId());
        assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
        assertEquals(1, done.getAttempts());
    }

    /** Killed twice with -9 and so out of attempts: FAILED, and nothing of it is left anywhere. */
    @Test
    @Order(10)
    void aJobThatFailsItsLastAttemptLeavesNothing() throws Exception {
        Job job = system.jobs.submitMerge(TestSystem.request(bigTies(), "team/killed"));
        for (int kill = 0; kill < 2; kill++) {
            int attempt = kill + 1;
            awaitJob(job.getId(), j -> j.getState() == JobState.RUNNING && j.getAttempts() == attempt
                    && j.getProgress().getTensorsDone() > 0);
            system.merge.kill();
            assertTrue(files(data.resolve("work")) > 0, "a killed merge leaves its partial output");
            system.merge.start();
        }
        Job done = system.watch(job.getId());
        assertEquals(JobState.FAILED, done.getState());
        assertTrue(done.getError().startsWith("gave up after 2 attempts"), done.getError());
        assertEquals(List.of(), listing(data.resolve("work")));
        assertEquals(0, files(uploads("team/killed")));
        assertEquals(404, system.status("models/team/killed"));
    }

    /** The same content merged again: the earlier version is returned and this job's copy is deleted. */
    @Test
    @Order(11)
    void aRunWhoseContentExistsDeletesItsCopy() throws Exception {
        String recipe = linear("team/ft-1", "team/ft-3");
        Job first = system.watch(system.jobs.submitMerge(TestSystem.request(recipe, "team/twice")).getId());
        Job second = system.watch(system.jobs.submitMerge(TestSystem.request(recipe, "team/twice")).getId());
        assertEquals(JobState.SUCCEEDED, second.getState(), second.getError());
        assertEquals(first.getResultVersion(), second.getResultVersion());
        assertTrue(files(uploads("team/twice").resolve(first.getId())) > 0);
        assertEquals(0, files(uploads("team/twice").resolve(second.getId())));
    }

    @Test
    @Order(12)
    void noS3CredentialsIs502NamingNoProviderAndTheMetadataServiceIsNeverAsked() throws Exception {
        String model = "team/from-s3";
        system.post("models", Map.of("name", model));
        HttpResponse<String> response = system.send("POST", "models/" + model + "/versions",
                Map.of("storage_uri", "s3://models/somewhere/"));
        assertEquals(502, response.statusCode(), response.body());
        assertTrue(response.body().contains("no S3 credentials are configured"), response.body());
        for (String leak : List.of("Provider", "aws.accessKeyId", "Exception")) {
            assertFalse(response.body().contains(leak), response.body());
        }
        refused(TestSystem.request(linear("s3://models/somewhere/"), "team/from-s3-merge"), Status.Code.UNAVAILABLE);
        assertEquals(0, IMDS_REQUESTS.get(), "requests to the instance metadata service");
    }

    /** A dead embedded database: 503 and UNAVAILABLE, liveness DOWN so a supervisor restarts the process. */
    @Test
    @Order(13)
    void aDeadDatabaseIs503AndUnavailableAndFailsLiveness() throws Exception {
        assertEquals(200, TestSystem.status(system.registry, "/q/health/live"));
        killPostgres(data.resolve("registry-db"));
        HttpResponse<String> models = system.send("GET", "models", null);
        assertEquals(503, models.statusCode(), models.body());
        assertTrue(models.body().contains("the registry's database is unavailable"), models.body());
        for (String leak : List.of("SQL", "postgresql", "Exception", "jdbc")) {
            assertFalse(models.body().contains(leak), models.body());
        }
        assertEquals(503, TestSystem.status(system.registry, "/q/health/live"));
        refused(TestSystem.request(linear("team/ft-1", "team/ft-2"), "team/registry-down"), Status.Code.UNAVAILABLE);

        killPostgres(data.resolve("merge-db"));
        assertEquals(503, TestSystem.status(system.merge, "/q/health/live"));
        refused(TestSystem.request(linear(blobs.resolve("models/base").toString()), "team/merge-db-down"),
                Status.Code.UNAVAILABLE);

        system.registry.kill();
        system.registry.start();
        system.merge.kill();
        system.merge.start();
        assertEquals(200, TestSystem.status(system.registry, "/q/health/live"));
        assertEquals(JobState.SUCCEEDED, system.watch(system.jobs.submitMerge(TestSystem.request(
                linear("team/ft-2", "team/ft-3"), "team/recovered")).getId()).getState());
    }

    private static void killPostgres(Path cluster) throws Exception {
        long pid = Long.parseLong(Files.readAllLines(cluster.resolve("postmaster.pid")).getFirst().trim());
        ProcessHandle postmaster = ProcessHandle.of(pid).orElseThrow();
        postmaster.descendants().forEach(ProcessHandle::destroyForcibly);
        postmaster.destroyForcibly();
        postmaster.onExit().get(30, TimeUnit.SECONDS);
    }

    private static Job awaitJob(String id, java.util.function.Predicate<Job> until) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        Job job = null;
        while (System.nanoTime() < deadline) {
            try {
                job = system.jobs.getJob(JobRef.newBuilder().setId(id).build());
                if (until.test(job)) {
                    return job;
                }
            } catch (StatusRuntimeException e) {
                if (e.getStatus().getCode() != Status.Code.UNAVAILABLE) {
                    throw e; // a restarting service answers UNAVAILABLE for a moment
                }
            }
            TestSystem.sleep(100);
        }
        throw new AssertionError("job " + id + " never got there: " + job);
    }

}
