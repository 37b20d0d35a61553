package io.modelmerge.mergeservice;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.stub.StreamObserver;
import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.proto.v1.Evaluator;
import io.modelmerge.proto.v1.Job;
import io.modelmerge.proto.v1.JobRef;
import io.modelmerge.proto.v1.JobState;
import io.modelmerge.proto.v1.ListEvaluatorsRequest;
import io.modelmerge.proto.v1.ListJobsRequest;
import io.modelmerge.proto.v1.MergeServiceGrpc;
import io.modelmerge.proto.v1.Options;
import io.modelmerge.proto.v1.Output;
import io.modelmerge.proto.v1.RegisterEvaluatorRequest;
import io.modelmerge.proto.v1.SubmitMergeRequest;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.S3BlobStore;
import io.modelmerge.storage.testing.S3ProxyServer;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The whole system: the registry and the merge service as separate processes (each on its embedded PostgreSQL),
 * S3Proxy as the object store, merge jobs over a real gRPC channel, results checked against the engine run here.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class MergeServiceIT {
    private static final ObjectMapper JSON = TestSystem.JSON;
    private static final String BUCKET = "models";

    private static Path work;
    private static S3ProxyServer s3;
    private static BlobStore bucket;
    private static TestSystem system;
    private static ServiceProcess merge;
    private static ManagedChannel channel;
    private static MergeServiceGrpc.MergeServiceBlockingStub jobs;

    @BeforeAll
    static void startTheSystem() throws Exception {
        work = Files.createTempDirectory("merge-it-");
        s3 = S3ProxyServer.start(work.resolve("s3"), BUCKET);
        bucket = S3BlobStore.open(URI.create("s3://" + BUCKET + "/"), s3.settings());
        Map<String, String> aws = Map.of("AWS_ENDPOINT_URL", s3.endpoint().toString(),
                "AWS_ACCESS_KEY_ID", S3ProxyServer.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY", S3ProxyServer.SECRET_KEY,
                "AWS_REGION", "us-east-1");
        Map<String, String> registryEnv = new LinkedHashMap<>(aws);
        registryEnv.put("MODELMERGE_DATA_DIR", work.resolve("registry").toString());
        registryEnv.put("MODELMERGE_REGISTRY_LOCAL_ROOTS", work.resolve("local").toString());
        Map<String, String> mergeEnv = new LinkedHashMap<>(aws);
        mergeEnv.put("MODELMERGE_DATA_DIR", work.resolve("merge").toString());
        mergeEnv.put("MODELMERGE_MERGE_LOCAL_ROOTS", work.resolve("local").toString());
        mergeEnv.put("MODELMERGE_MERGE_OUTPUT_ROOT", "s3://" + BUCKET + "/merged/");
        mergeEnv.put("MODELMERGE_MERGE_LEASE", "PT3S");
        mergeEnv.put("MODELMERGE_MERGE_POLL_INTERVAL", "PT0.2S");
        mergeEnv.put("MODELMERGE_MERGE_MAX_BYTES_PER_SECOND", TestSystem.BIG_JOB_RATE);
        system = TestSystem.start(work, registryEnv, mergeEnv);
        merge = system.merge;
        channel = system.channel;
        jobs = system.jobs;

        // A base and three fine-tunes of it, in S3, registered with their lineage.
        for (int m = 0; m < 4; m++) {
            Path dir = SmallModels.write(work.resolve("local/small-" + m), m, SmallModels.SMALL);
            String name = m == 0 ? "base" : "ft-" + m;
            upload(dir, "team/llama-" + name + "/");
            post("models", Map.of("name", "team/llama-" + name));
            post("models/team/llama-" + name + "/versions", Map.of("storage_uri", "s3://" + BUCKET + "/team/llama-" + name + "/",
                    "parents", m == 0 ? List.of() : List.of(Map.of("ref", "team/llama-base@1", "relation", "finetune"))));
        }
        put("models/team/llama-ft-1/aliases/nightly", Map.of("version", 1));
    }

    @AfterAll
    static void stopTheSystem() throws Exception {
        if (system != null) {
            system.close();
        }
        if (bucket != null) {
            bucket.close();
        }
        if (s3 != null) {
            s3.close();
        }
        TestSystem.deleteTree(work);
    }

    private static String recipe(String method) {
        String density = method.equals("linear") ? "" : ", density: 0.6";
        return """
                merge_method: %s
                %smodels:
                  - model: team/llama-ft-1@nightly
                    parameters: {weight: 0.5%s}
                  - model: team/llama-ft-2@1
                    parameters: {weight: 0.3%s}
                  - model: team/llama-ft-3
                    parameters: {weight: 0.2%s}
                dtype: float32
                """.formatted(method, method.equals("linear") ? "" : "base_model: team/llama-base@1\n", density,
                density, density);
    }

    @Test
    @Order(1)
    void tiesDareTiesAndLinearJobsRegisterVersionsEqualToTheEngineRunHere() throws Exception {
        for (String method : List.of("ties", "dare_ties", "linear")) {
            String model = "team/llama-" + method.replace('_', '-');
            Job submitted = jobs.submitMerge(SubmitMergeRequest.newBuilder().setRecipeYaml(recipe(method))
                    .setOutput(Output.newBuilder().setModel(model).setAlias("candidate").putTags("ci", "nightly"))
                    .setOptions(Options.newBuilder().setSeed(7)).build());
            assertEquals(JobState.QUEUED, submitted.getState());
            assertEquals("team/llama-ft-1@1", submitted.getPinnedInputsOrThrow("team/llama-ft-1@nightly"));
            Job done = watch(submitted.getId());
            assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
            assertEquals(model + "@1", done.getResultVersion());

            JsonNode version = get("resolve?ref=" + model + "@candidate");
            assertEquals(model + "@1", version.get("ref").asText());
            assertEquals(recipe(method), version.get("recipe").asText());
            List<String> parents = JSON.convertValue(version.get("parents").findValuesAsText("ref"), List.class);
            assertEquals(method.equals("linear") ? List.of("team/llama-ft-1@1", "team/llama-ft-2@1", "team/llama-ft-3@1")
                    : List.of("team/llama-base@1", "team/llama-ft-1@1", "team/llama-ft-2@1", "team/llama-ft-3@1"),
                    parents.stream().sorted().toList());
            version.get("parents").forEach(p -> assertEquals("merge", p.get("relation").asText()));
            assertTrue(version.get("storage_uri").asText().startsWith("s3://" + BUCKET + "/merged/" + model + "/"));

            // The engine, run here on local copies of the same inputs with the same seed, writes the same bytes.
            Map<String, String> local = new LinkedHashMap<>();
            local.put("team/llama-base@1", work.resolve("local/small-0").toString());
            local.put("team/llama-ft-1@nightly", work.resolve("local/small-1").toString());
            local.put("team/llama-ft-2@1", work.resolve("local/small-2").toString());
            local.put("team/llama-ft-3", work.resolve("local/small-3").toString());
            Path expected = work.resolve("expected-" + method);
            new MergeExecutor(MergeOptions.defaults().withSeed(7), p -> { }, new AtomicBoolean())
                    .run(RecipeParser.parse(recipe(method)).withLocations(local), expected);
            String sha = sha256(Files.readAllBytes(expected.resolve("model.safetensors")));
            JsonNode file = null;
            for (JsonNode f : version.get("files")) {
                if (f.get("path").asText().equals("model.safetensors")) {
                    file = f;
                }
            }
            assertEquals(sha, file.get("sha256").asText(), method + ": merged tensors differ from the local engine's");
        }
    }

    @Test
    @Order(2)
    void grpcHealthAndReflectionAnswer() throws Exception {
        assertEquals(HealthCheckResponse.ServingStatus.SERVING,
                HealthGrpc.newBlockingStub(channel).check(HealthCheckRequest.getDefaultInstance()).getStatus());
        List<String> services = new ArrayList<>();
        CountDownLatch done = new CountDownLatch(1);
        StreamObserver<ServerReflectionRequest> reflection = ServerReflectionGrpc.newStub(channel).serverReflectionInfo(
                new StreamObserver<>() {
                    @Override
                    public void onNext(ServerReflectionResponse response) {
                        response.getListServicesResponse().getServiceList().forEach(svc -> services.add(svc.getName()));
                    }

                    @Override
                    public void onError(Throwable t) {
                        done.countDown();
                    }

                    @Override
                    public void onCompleted() {
                        done.countDown();
                    }
                });
        reflection.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
        reflection.onCompleted();
        assertTrue(done.await(10, TimeUnit.SECONDS));
        assertTrue(services.contains("modelmerge.v1.MergeService"), services.toString());
    }

    @Test
    @Order(2)
    void theSameIdempotencyKeyReturnsTheSameJob() {
        SubmitMergeRequest request = SubmitMergeRequest.newBuilder().setRecipeYaml(recipe("linear"))
                .setOutput(Output.newBuilder().setModel("team/llama-idem")).setIdempotencyKey("nightly-2026-11-22").build();
        Job first = jobs.submitMerge(request);
        Job second = jobs.submitMerge(request);
        assertEquals(first.getId(), second.getId());
        assertEquals(JobState.SUCCEEDED, watch(first.getId()).getState());
        assertEquals(first.getId(), jobs.submitMerge(request).getId());
    }

    @Test
    @Order(3)
    void badSubmissionsGetTheirStatusAndCreateNothing() throws Exception {
        int before = jobs.listJobs(ListJobsRequest.newBuilder().setPageSize(500).build()).getJobsCount();
        StatusRuntimeException invalid = assertThrows(StatusRuntimeException.class, () -> jobs.submitMerge(
                request("merge_method: ties\nmodels: [", "team/never")));
        assertEquals(Status.Code.INVALID_ARGUMENT, invalid.getStatus().getCode());
        assertTrue(invalid.getStatus().getDescription().startsWith("recipe_yaml:"), invalid.getMessage());

        StatusRuntimeException unknown = assertThrows(StatusRuntimeException.class, () -> jobs.submitMerge(
                request(recipe("linear").replace("team/llama-ft-3", "team/llama-ft-9@2"), "team/never")));
        assertEquals(Status.Code.NOT_FOUND, unknown.getStatus().getCode());
        assertTrue(unknown.getStatus().getDescription().contains("team/llama-ft-9@2"), unknown.getMessage());

        Path odd = SmallModels.write(work.resolve("local/odd"), 9, SmallModels.ODD);
        upload(odd, "team/llama-odd/");
        post("models", Map.of("name", "team/llama-odd"));
        post("models/team/llama-odd/versions", Map.of("storage_uri", "s3://" + BUCKET + "/team/llama-odd/"));
        StatusRuntimeException incompatible = assertThrows(StatusRuntimeException.class, () -> jobs.submitMerge(
                request(recipe("ties").replace("team/llama-ft-3", "team/llama-odd"), "team/never")));
        assertEquals(Status.Code.FAILED_PRECONDITION, incompatible.getStatus().getCode());
        assertTrue(incompatible.getStatus().getDescription().contains("model.layers.0.mlp.up_proj.weight"),
                incompatible.getMessage());

        // a parameter linear does not take: refused when the job asks to be strict (by default, ignored and noted)
        SubmitMergeRequest strict = request(recipe("linear").replace("{weight: 0.5}", "{weight: 0.5, density: 0.6}"),
                "team/never").toBuilder().setOptions(Options.newBuilder().setStrict(true)).build();
        StatusRuntimeException refused = assertThrows(StatusRuntimeException.class, () -> jobs.submitMerge(strict));
        assertEquals(Status.Code.FAILED_PRECONDITION, refused.getStatus().getCode()); // as the recipe's other checks
        assertTrue(refused.getStatus().getDescription().contains("unknown parameter 'density'"), refused.getMessage());

        StatusRuntimeException badOutput = assertThrows(StatusRuntimeException.class, () -> jobs.submitMerge(
                request(recipe("linear"), "Team/../x")));
        assertEquals(Status.Code.INVALID_ARGUMENT, badOutput.getStatus().getCode());

        assertEquals(before, jobs.listJobs(ListJobsRequest.newBuilder().setPageSize(500).build()).getJobsCount());
        assertEquals(404, status("models/team/never"));
    }

    @Test
    @Order(4)
    void cancellingARunningJobLeavesNoVersionAndNoFiles() throws Exception {
        String recipe = bigRecipe();
        Job job = jobs.submitMerge(request(recipe, "team/llama-cancelled"));
        waitForProgress(job.getId());
        Job cancelling = jobs.cancelJob(JobRef.newBuilder().setId(job.getId()).build());
        assertTrue(cancelling.getState() == JobState.RUNNING || cancelling.getState() == JobState.CANCELLED);
        assertEquals(JobState.CANCELLED, watch(job.getId()).getState());
        assertEquals(404, status("models/team/llama-cancelled/versions/1"));
        assertEquals(List.of(), bucket.list("merged/team/llama-cancelled/"));
    }

    @Test
    @Order(5)
    void aMergeServiceKilledMidJobFinishesItOnceAfterARestart() throws Exception {
        Job job = jobs.submitMerge(request(bigRecipe(), "team/llama-survivor"));
        waitForProgress(job.getId());
        merge.kill();
        merge.start();
        Job done = watch(job.getId());
        assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
        assertEquals(2, done.getAttempts());
        assertEquals("team/llama-survivor@1", done.getResultVersion());
        JsonNode versions = get("models/team/llama-survivor/versions");
        assertEquals(1, versions.get("total").asInt());
    }

    private static SubmitMergeRequest request(String recipe, String output) {
        return TestSystem.request(recipe, output);
    }

    /** A TIES merge of three larger local models: long enough to cancel or kill the service in the middle. */
    private static String bigRecipe() throws Exception {
        for (int m = 0; m < 3; m++) {
            if (!Files.exists(work.resolve("local/big-" + m + "/model.safetensors"))) {
                SmallModels.write(work.resolve("local/big-" + m), m, SmallModels.BIG);
            }
        }
        return """
                merge_method: ties
                base_model: %s
                models:
                  - model: %s
                    parameters: {weight: 0.5, density: 0.5}
                  - model: %s
                    parameters: {weight: 0.5, density: 0.5}
                """.formatted(work.resolve("local/big-0").toUri(), work.resolve("local/big-1").toUri(),
                work.resolve("local/big-2").toUri());
    }

    private static String fileSha(JsonNode version, String path) {
        for (JsonNode f : version.get("files")) {
            if (f.get("path").asText().equals(path)) {
                return f.get("sha256").asText();
            }
        }
        throw new AssertionError(version.get("ref") + " has no " + path);
    }

    private static Job delta(String method, String fineTune, String output, String parameters) {
        String yaml = "merge_method: " + method + "\nbase_model: team/llama-base@1\nmodels:\n  - model: " + fineTune
                + "\n" + parameters;
        Job done = watch(jobs.submitMerge(SubmitMergeRequest.newBuilder().setRecipeYaml(yaml)
                .setOutput(Output.newBuilder().setModel(output)).setOptions(Options.newBuilder().setSeed(3)).build()).getId());
        assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
        return done;
    }

    /**
     * Delta jobs go through the same queue as merges and register versions with the right format and lineage; a TIES
     * merge whose models are dense delta versions writes the same bytes as the TIES merge of the fine-tunes.
     */
    @Test
    @Order(7)
    void deltaJobsRegisterDeltasAndAMergeOfDeltasEqualsTheMergeOfTheFineTunes() throws Exception {
        delta("delta_extract", "team/llama-ft-1@1", "team/llama-ft-1-delta", "");
        delta("delta_extract", "team/llama-ft-2@1", "team/llama-ft-2-delta", "");
        delta("delta_bitdelta", "team/llama-ft-3@1", "team/llama-ft-3-bits", "parameters: {scope: row}\n");
        delta("delta_lowrank", "team/llama-ft-1@1", "team/llama-ft-1-lora", "parameters: {max_rank: 4}\n");

        JsonNode dense = get("resolve?ref=team/llama-ft-1-delta@1");
        assertEquals("delta", dense.get("format").asText());
        Map<String, String> relations = new java.util.TreeMap<>();
        dense.get("parents").forEach(p -> relations.put(p.get("ref").asText(), p.get("relation").asText()));
        assertEquals(Map.of("team/llama-base@1", "delta", "team/llama-ft-1@1", "delta_of"), relations);
        JsonNode bits = get("resolve?ref=team/llama-ft-3-bits@1");
        assertEquals("bitdelta", bits.get("summary").get("delta").get("operation").asText());
        assertTrue(bits.get("summary").get("delta").get("compression_ratio").asDouble() > 1);
        assertEquals("peft_adapter", get("resolve?ref=team/llama-ft-1-lora@1").get("format").asText());

        String ties = """
                merge_method: ties
                base_model: team/llama-base@1
                models:
                  - model: %s
                    parameters: {weight: 0.6, density: 0.5}
                  - model: %s
                    parameters: {weight: 0.4, density: 0.5}
                dtype: float32
                """;
        for (String[] models : List.of(new String[] {"team/llama-ft-1@1", "team/llama-ft-2@1", "team/llama-ties-full"},
                new String[] {"team/llama-ft-1-delta@1", "team/llama-ft-2-delta@1", "team/llama-ties-deltas"})) {
            Job done = watch(jobs.submitMerge(SubmitMergeRequest.newBuilder()
                    .setRecipeYaml(ties.formatted(models[0], models[1])).setOutput(Output.newBuilder().setModel(models[2]))
                    .setOptions(Options.newBuilder().setSeed(3)).build()).getId());
            assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
        }
        assertEquals(fileSha(get("resolve?ref=team/llama-ties-full@1"), "model.safetensors"),
                fileSha(get("resolve?ref=team/llama-ties-deltas@1"), "model.safetensors"));
    }

    /**
     * Every gRPC method × every kind of caller (no token, expired, revoked, read, write, promote of nightly, submit,
     * admin on {@code team/*}, and every scope but admin on another namespace): UNAUTHENTICATED, PERMISSION_DENIED or
     * the method's answer, nothing changed by a refused call; a submission naming an input its submitter may not
     * read is refused naming it, one whose output it may not write likewise; and no token the test used appears in
     * either service's log.
     */
    @Test
    @Order(8)
    void everyMethodAnswersEveryCallerAsItsTokenSaysAndNoTokenIsLogged() throws Exception {
        Map<String, String> tokens = new LinkedHashMap<>();
        tokens.put("none", null);
        tokens.put("read", token("read", List.of("read"), "team/*", null));
        tokens.put("write", token("write", List.of("write"), "team/*", null));
        tokens.put("promote-nightly", token("promote-nightly", List.of("promote"), "team/*", null));
        tokens.put("submit", token("submit", List.of("submit"), "team/*", null));
        tokens.put("admin", token("team-admin", List.of("admin"), "team/*", null));
        tokens.put("other", token("other", List.of("read", "write", "promote", "submit"), "other/*", null));
        String revoked = token("revoked", List.of("admin"), "team/*", null);
        assertEquals(204, system.send("DELETE", "tokens/" + revoked.substring(3, 13), null).statusCode());
        tokens.put("revoked", revoked);
        java.time.OffsetDateTime soon = java.time.OffsetDateTime.now().plusSeconds(1);
        tokens.put("expired", token("expired", List.of("admin"), "team/*", soon));
        while (!java.time.OffsetDateTime.now().isAfter(soon.plusNanos(200_000_000))) {
            Thread.sleep(100);
        }
        Job done = system.watch(jobs.submitMerge(request(recipe("linear"), "team/auth-done")).getId());
        assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
        int jobsBefore = jobs.listJobs(ListJobsRequest.newBuilder().setPageSize(500).build()).getJobsCount();

        Set<String> readers = Set.of("read", "write", "promote-nightly", "submit", "admin");
        Map<String, java.util.function.Function<MergeServiceGrpc.MergeServiceBlockingStub, Object>> methods =
                new LinkedHashMap<>();
        methods.put("SubmitMerge", stub -> stub.submitMerge(request(recipe("linear"), "team/auth-submitted")));
        methods.put("GetJob", stub -> stub.getJob(JobRef.newBuilder().setId(done.getId()).build()));
        methods.put("ListJobs", stub -> stub.listJobs(ListJobsRequest.newBuilder().setPageSize(500).build()));
        methods.put("WatchJob", stub -> {
            var events = stub.watchJob(JobRef.newBuilder().setId(done.getId()).build());
            Object last = null;
            while (events.hasNext()) {
                last = events.next();
            }
            return last;
        });
        methods.put("CancelJob", stub -> stub.cancelJob(JobRef.newBuilder().setId(done.getId()).build()));
        methods.put("RegisterEvaluator", stub -> stub.registerEvaluator(RegisterEvaluatorRequest.newBuilder()
                .setEvaluator(Evaluator.newBuilder().setName("team/judge").setVersion("1")
                        .setUrl("http://127.0.0.1:9/score")).setSecret("a-secret-of-16-chars").build()));
        methods.put("ListEvaluators", stub -> stub.listEvaluators(ListEvaluatorsRequest.getDefaultInstance()));
        Map<String, Set<String>> allowed = Map.of(
                "SubmitMerge", Set.of("admin"), // submit and write on the output, read on the inputs: admin alone
                "GetJob", readers, "WatchJob", readers,
                "ListJobs", Set.of("read", "write", "promote-nightly", "submit", "admin", "other"),
                "CancelJob", Set.of("submit", "admin"),
                "RegisterEvaluator", Set.of("admin"), // admin on the evaluator's namespace
                "ListEvaluators", Set.of("read", "write", "promote-nightly", "submit", "admin", "other"));
        List<String> wrong = new ArrayList<>();
        for (var method : methods.entrySet()) {
            for (var caller : tokens.entrySet()) {
                Status.Code expected = switch (caller.getKey()) {
                    case "none", "expired", "revoked" -> Status.Code.UNAUTHENTICATED;
                    default -> allowed.get(method.getKey()).contains(caller.getKey()) ? Status.Code.OK
                            : Status.Code.PERMISSION_DENIED;
                };
                Status.Code got;
                String detail = "";
                try {
                    method.getValue().apply(TestSystem.stub(channel, caller.getValue()));
                    got = Status.Code.OK;
                } catch (StatusRuntimeException e) {
                    got = e.getStatus().getCode();
                    detail = e.getStatus().getDescription();
                }
                if (got != expected) {
                    wrong.add(method.getKey() + " as " + caller.getKey() + ": " + got + " (expected " + expected + ") "
                            + detail);
                }
            }
        }
        assertTrue(wrong.isEmpty(), String.join("\n", wrong));
        // the other namespace's token lists none of team's jobs; the admin's submission was the one job added
        assertEquals(0, TestSystem.stub(channel, tokens.get("other")).listJobs(ListJobsRequest.newBuilder()
                .setPageSize(500).build()).getJobsCount());
        assertEquals(jobsBefore + 1, jobs.listJobs(ListJobsRequest.newBuilder().setPageSize(500).build()).getJobsCount());
        Job submitted = jobs.listJobs(ListJobsRequest.newBuilder().setOutputModel("team/auth-submitted").build())
                .getJobs(0);
        assertEquals("team-admin", submitted.getSubmittedBy());
        assertEquals(JobState.SUCCEEDED, jobs.getJob(JobRef.newBuilder().setId(done.getId()).build()).getState(),
                "cancelling a finished job changes nothing");

        // A submitter that may not read one input is refused naming it; one that may not write the output likewise.
        String narrow = token("ci", List.of("submit", "write", "read"), "team/llama-ft-1", null);
        String teamWide = token("ci-team", List.of("submit", "read"), "team/*", null);
        StatusRuntimeException input = assertThrows(StatusRuntimeException.class, () -> TestSystem.stub(channel, narrow)
                .submitMerge(request(recipe("linear"), "team/llama-ft-1")));
        assertEquals(Status.Code.PERMISSION_DENIED, input.getStatus().getCode());
        assertTrue(input.getStatus().getDescription().contains("read the input 'team/llama-ft-2@1'"), input.getMessage());
        StatusRuntimeException output = assertThrows(StatusRuntimeException.class, () -> TestSystem.stub(channel,
                teamWide).submitMerge(request(recipe("linear"), "team/auth-unwritable")));
        assertEquals(Status.Code.PERMISSION_DENIED, output.getStatus().getCode());
        assertTrue(output.getStatus().getDescription().contains("write the output model team/auth-unwritable"),
                output.getMessage());
        assertEquals(jobsBefore + 1, jobs.listJobs(ListJobsRequest.newBuilder().setPageSize(500).build()).getJobsCount());

        List<String> used = new ArrayList<>(tokens.values().stream().filter(java.util.Objects::nonNull).toList());
        used.addAll(List.of(narrow, teamWide, TestSystem.ADMIN_TOKEN));
        for (String log : List.of("registry.log", "merge-service.log")) {
            String text = Files.readString(work.resolve(log));
            for (String token : used) {
                assertFalse(text.contains(token), log + " holds token " + token.substring(0, 13) + "...");
                assertFalse(text.contains(token.substring(14)), log + " holds the secret of " + token.substring(0, 13));
            }
        }
    }

    /** A job's end reaches the output namespace's webhook as job.finished, after its version.ready, signed. */
    @Test
    @Order(9)
    void aFinishedJobIsDeliveredToTheNamespacesWebhook() throws Exception {
        List<JsonNode> received = new java.util.concurrent.CopyOnWriteArrayList<>();
        com.sun.net.httpserver.HttpServer receiver = com.sun.net.httpserver.HttpServer.create(
                new java.net.InetSocketAddress("127.0.0.1", 0), 0);
        String[] secret = new String[1];
        receiver.createContext("/hook", exchange -> {
            byte[] body = exchange.getRequestBody().readAllBytes();
            String timestamp = exchange.getRequestHeaders().getFirst("X-Modelmerge-Timestamp");
            try {
                javax.crypto.Mac mac = javax.crypto.Mac.getInstance("HmacSHA256");
                mac.init(new javax.crypto.spec.SecretKeySpec(secret[0].getBytes(), "HmacSHA256"));
                mac.update((timestamp + ".").getBytes());
                String expected = "sha256=" + java.util.HexFormat.of().formatHex(mac.doFinal(body));
                if (java.security.MessageDigest.isEqual(expected.getBytes(),
                        String.valueOf(exchange.getRequestHeaders().getFirst("X-Modelmerge-Signature")).getBytes())) {
                    received.add(JSON.readTree(body));
                }
            } catch (java.security.GeneralSecurityException e) {
                throw new IllegalStateException(e);
            }
            exchange.sendResponseHeaders(204, -1);
            exchange.close();
        });
        receiver.start();
        try {
            secret[0] = system.call("POST", "webhooks", Map.of("namespace", "team", "url", "http://127.0.0.1:"
                    + receiver.getAddress().getPort() + "/hook", "events", List.of("version.ready", "job.finished")), 201)
                    .get("secret").asText();
            Job done = system.watch(jobs.submitMerge(request(recipe("linear"), "team/hooked")).getId());
            assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            JsonNode finished = null;
            while (finished == null && System.nanoTime() < deadline) {
                finished = received.stream().filter(e -> e.get("event").asText().equals("job.finished")).findFirst()
                        .orElse(null);
                Thread.sleep(100);
            }
            assertNotNull(finished, "no job.finished delivered; received " + received);
            assertEquals(done.getId(), finished.get("job").get("id").asText());
            assertEquals("SUCCEEDED", finished.get("job").get("state").asText());
            assertEquals("team/hooked@1", finished.get("job").get("result_version").asText());
            assertTrue(received.stream().anyMatch(e -> e.get("event").asText().equals("version.ready")
                    && e.get("ref").asText().equals("team/hooked@1")), received.toString());
        } finally {
            receiver.stop(0);
        }
    }

    /** A token made with the admin token: its scopes on {@code grant}, expiring at {@code expires} (null: never). */
    private static String token(String name, List<String> scopes, String grant, java.time.OffsetDateTime expires)
            throws Exception {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("name", name);
        body.put("scopes", scopes);
        body.put("namespaces", List.of(grant));
        if (expires != null) {
            body.put("expires_at", expires.toString());
        }
        return system.call("POST", "tokens", body, 201).get("token").asText();
    }

    private static void waitForProgress(String id) {
        system.waitForProgress(id);
    }

    private static Job watch(String id) {
        return system.watch(id);
    }

    private static void upload(Path dir, String prefix) throws Exception {
        try (var files = Files.list(dir)) {
            for (Path f : files.toList()) {
                bucket.write(prefix + f.getFileName(), Files.readAllBytes(f));
            }
        }
    }

    private static JsonNode get(String path) throws Exception {
        return system.get(path);
    }

    private static void post(String path, Object body) throws Exception {
        system.post(path, body);
    }

    private static void put(String path, Object body) throws Exception {
        system.put(path, body);
    }

    private static int status(String path) throws Exception {
        return system.status(path);
    }

    private static String sha256(byte[] bytes) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }

    /** Llama-like F32 checkpoints written from the format's definition: a base (0) and fine-tunes of it. */
    static final class SmallModels {
        static final Map<String, long[]> SMALL = shapes(2, 64, 96, 128);
        static final Map<String, long[]> ODD = shapes(2, 64, 80, 128);
        static final Map<String, long[]> BIG = shapes(12, 1024, 2048, 4096);

        static Map<String, long[]> shapes(int layers, int hidden, int intermediate, int vocab) {
            Map<String, long[]> shapes = new LinkedHashMap<>();
            shapes.put("model.embed_tokens.weight", new long[] {vocab, hidden});
            for (int l = 0; l < layers; l++) {
                shapes.put("model.layers." + l + ".self_attn.q_proj.weight", new long[] {hidden, hidden});
                shapes.put("model.layers." + l + ".mlp.up_proj.weight", new long[] {intermediate, hidden});
                shapes.put("model.layers." + l + ".input_layernorm.weight", new long[] {hidden});
            }
            shapes.put("lm_head.weight", new long[] {vocab, hidden});
            return shapes;
        }

        static Path write(Path dir, int model, Map<String, long[]> shapes) throws Exception {
            Files.createDirectories(dir);
            StringBuilder header = new StringBuilder("{");
            long offset = 0;
            for (var t : shapes.entrySet()) {
                long n = 1;
                for (long d : t.getValue()) {
                    n *= d;
                }
                header.append(header.length() > 1 ? "," : "").append('"').append(t.getKey())
                        .append("\":{\"dtype\":\"F32\",\"shape\":").append(Arrays.toString(t.getValue()).replace(" ", ""))
                        .append(",\"data_offsets\":[").append(offset).append(',').append(offset + 4 * n).append("]}");
                offset += 4 * n;
            }
            header.append('}');
            while (header.length() % 8 != 0) {
                header.append(' ');
            }
            byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
            ByteBuffer file = ByteBuffer.allocate((int) (8 + json.length + offset)).order(ByteOrder.LITTLE_ENDIAN);
            file.putLong(json.length).put(json);
            Random base = new Random(42);
            Random tune = new Random(1000 + model);
            while (file.hasRemaining()) {
                float w = (float) base.nextGaussian() * 0.02f;
                file.putFloat(model == 0 ? w : w + (float) tune.nextGaussian() * 0.002f);
            }
            Files.write(dir.resolve("model.safetensors"), file.array());
            Files.writeString(dir.resolve("config.json"), "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\"}");
            return dir;
        }
    }
}
