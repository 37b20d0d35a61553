package io.modelmerge.mergeservice;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.modelmerge.proto.v1.Job;
import io.modelmerge.proto.v1.JobEvent;
import io.modelmerge.proto.v1.JobRef;
import io.modelmerge.proto.v1.JobState;
import io.modelmerge.proto.v1.MergeServiceGrpc;
import io.modelmerge.proto.v1.Output;
import io.modelmerge.proto.v1.SubmitMergeRequest;
import io.modelmerge.registry.client.ApiTokens;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The whole system for the end-to-end tests: the registry and the merge service as separate processes (each on
 * its embedded PostgreSQL), a gRPC channel to the merge service, and the REST calls the tests make.
 */
final class TestSystem implements AutoCloseable {
    static final ObjectMapper JSON = new ObjectMapper();
    /** The registry's first admin token, which the tests and the merge service call with. */
    static final String ADMIN_TOKEN = ApiTokens.mint();
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    final ServiceProcess registry;
    final ServiceProcess merge;
    final ManagedChannel channel;
    final MergeServiceGrpc.MergeServiceBlockingStub jobs;

    private TestSystem(ServiceProcess registry, ServiceProcess merge) {
        this.registry = registry;
        this.merge = merge;
        this.channel = ManagedChannelBuilder.forAddress("127.0.0.1", merge.port()).usePlaintext().build();
        this.jobs = stub(channel, ADMIN_TOKEN);
    }

    /** A stub whose calls carry {@code token} (none if null). */
    static MergeServiceGrpc.MergeServiceBlockingStub stub(ManagedChannel channel, String token) {
        MergeServiceGrpc.MergeServiceBlockingStub stub = MergeServiceGrpc.newBlockingStub(channel);
        if (token == null) {
            return stub;
        }
        Metadata bearer = new Metadata();
        bearer.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
        return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(bearer));
    }

    /** A registry's environment gets the tests' admin token as its installation's first. */
    static void bootstrapToken(Map<String, String> registryEnv) {
        registryEnv.put("MODELMERGE_REGISTRY_AUTH_BOOTSTRAP_TOKEN", ADMIN_TOKEN);
    }

    /** A merge service's environment gets the tests' admin token to call the registry with. */
    static void registryToken(Map<String, String> mergeEnv) {
        mergeEnv.put("MODELMERGE_MERGE_REGISTRY_TOKEN", ADMIN_TOKEN);
    }

    /** Deletes {@code dir} and everything under it, if it is there (a test's work directory). */
    static void deleteTree(Path dir) throws IOException {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Starts the registry, then the merge service pointed at it ({@code MODELMERGE_MERGE_REGISTRY_URL} is set). */
    static TestSystem start(Path logDir, Map<String, String> registryEnv, Map<String, String> mergeEnv) throws Exception {
        Map<String, String> registryWithToken = new java.util.LinkedHashMap<>(registryEnv);
        Map<String, String> env = new java.util.LinkedHashMap<>(mergeEnv);
        bootstrapToken(registryWithToken);
        registryToken(env);
        ServiceProcess registry = ServiceProcess.start("registry", "modelmerge.registry.jar", registryWithToken, logDir);
        env.put("MODELMERGE_MERGE_REGISTRY_URL", "http://127.0.0.1:" + registry.port());
        ServiceProcess merge = ServiceProcess.start("merge-service", "modelmerge.merge.jar", env, logDir);
        return new TestSystem(registry, merge);
    }

    static SubmitMergeRequest request(String recipe, String output) {
        return SubmitMergeRequest.newBuilder().setRecipeYaml(recipe).setOutput(Output.newBuilder().setModel(output)).build();
    }

    JsonNode get(String path) throws Exception {
        return call("GET", path, null, 200);
    }

    void post(String path, Object body) throws Exception {
        call("POST", path, body, 201);
    }

    void put(String path, Object body) throws Exception {
        call("PUT", path, body, 200);
    }

    int status(String path) throws Exception {
        return send("GET", path, null).statusCode();
    }

    JsonNode call(String method, String path, Object body, int expected) throws Exception {
        HttpResponse<String> response = send(method, path, body);
        assertEquals(expected, response.statusCode(), method + " " + path + ": " + response.body());
        return JSON.readTree(response.body());
    }

    /** A registry call with the admin token. */
    HttpResponse<String> send(String method, String path, Object body) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + registry.port() + "/api/v1/"
                + path)).header("Content-Type", "application/json").header("Authorization", "Bearer " + ADMIN_TOKEN)
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)));
        return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** The status of a service's own endpoint, e.g. {@code /q/health/live}. */
    static int status(ServiceProcess service, String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + service.port() + path)).build(),
                HttpResponse.BodyHandlers.discarding()).statusCode();
    }

    /**
     * The merge service's write rate in the tests that interrupt a job: a job over the big models (185 MB out)
     * then takes at least 11 s on any machine, so a test that saw it progress acts while it still runs.
     */
    static final String BIG_JOB_RATE = String.valueOf(16L << 20);

    /** Waits until the job runs and has merged a tensor: a moment to interrupt it. */
    void waitForProgress(String id) {
        Iterator<JobEvent> events = jobs.withDeadlineAfter(120, TimeUnit.SECONDS).watchJob(JobRef.newBuilder().setId(id).build());
        while (events.hasNext()) {
            Job job = events.next().getJob();
            if (job.getState() == JobState.RUNNING && job.getProgress().getTensorsDone() > 0) {
                return;
            }
            assertTrue(job.getState() == JobState.QUEUED || job.getState() == JobState.RUNNING,
                    "job ended before it could be interrupted: " + job);
        }
        throw new AssertionError("watch ended before the job made progress");
    }

    /** Follows a job through WatchJob to its end; reconnects when the service restarts under it. */
    Job watch(String id) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
        Job last = null;
        while (System.nanoTime() < deadline) {
            try {
                Iterator<JobEvent> events = jobs.withDeadlineAfter(180, TimeUnit.SECONDS)
                        .watchJob(JobRef.newBuilder().setId(id).build());
                while (events.hasNext()) {
                    last = events.next().getJob();
                }
                return last;
            } catch (StatusRuntimeException e) {
                if (e.getStatus().getCode() != Status.Code.UNAVAILABLE) {
                    throw e;
                }
                sleep(200);
            }
        }
        throw new AssertionError("job " + id + " did not end in 180 s: " + last);
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    @Override
    public void close() throws Exception {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        merge.close();
        registry.close();
    }
}
