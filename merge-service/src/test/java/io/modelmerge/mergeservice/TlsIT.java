package io.modelmerge.mergeservice;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.modelmerge.proto.v1.Job;
import io.modelmerge.proto.v1.JobState;
import io.modelmerge.proto.v1.ListJobsRequest;
import io.modelmerge.proto.v1.MergeServiceGrpc;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Both services on TLS only, with a self-signed certificate made here by keytool: the registry's REST API over
 * HTTPS, the merge service's gRPC over TLS on the same port as its HTTPS health, the merge service calling the
 * registry over HTTPS; a plaintext call to either is refused.
 */
class TlsIT {
    private static final String PASSWORD = "changeit";

    private static Path work;
    private static ServiceProcess registry;
    private static ServiceProcess merge;
    private static SSLContext trust;
    private static HttpClient https;

    @BeforeAll
    static void startBothOnTls() throws Exception {
        work = Files.createTempDirectory("tls-it-");
        Path keystore = work.resolve("server.p12");
        Path certificate = work.resolve("server.pem");
        Path truststore = work.resolve("trust.p12");
        keytool("-genkeypair", "-alias", "modelmerge", "-keyalg", "EC", "-groupname", "secp256r1",
                "-dname", "CN=127.0.0.1", "-ext", "SAN=ip:127.0.0.1", "-validity", "2", "-storetype", "PKCS12",
                "-keystore", keystore.toString(), "-storepass", PASSWORD, "-keypass", PASSWORD);
        keytool("-exportcert", "-rfc", "-alias", "modelmerge", "-keystore", keystore.toString(),
                "-storepass", PASSWORD, "-file", certificate.toString());
        keytool("-importcert", "-noprompt", "-alias", "modelmerge", "-file", certificate.toString(),
                "-keystore", truststore.toString(), "-storetype", "PKCS12", "-storepass", PASSWORD);
        KeyStore trusted = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(truststore)) {
            trusted.load(in, PASSWORD.toCharArray());
        }
        TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        factory.init(trusted);
        trust = SSLContext.getInstance("TLS");
        trust.init(null, factory.getTrustManagers(), null);
        https = HttpClient.newBuilder().sslContext(trust).build();

        Map<String, String> serverTls = Map.of("QUARKUS_TLS_KEY_STORE_P12_PATH", keystore.toString(),
                "QUARKUS_TLS_KEY_STORE_P12_PASSWORD", PASSWORD, "QUARKUS_HTTP_INSECURE_REQUESTS", "disabled");
        Map<String, String> registryEnv = new LinkedHashMap<>(serverTls);
        registryEnv.put("MODELMERGE_DATA_DIR", work.resolve("registry").toString());
        registryEnv.put("MODELMERGE_REGISTRY_LOCAL_ROOTS", work.resolve("local").toString());
        TestSystem.bootstrapToken(registryEnv);
        registry = ServiceProcess.start("registry", "modelmerge.registry.jar", registryEnv, work, trust);
        Map<String, String> mergeEnv = new LinkedHashMap<>(serverTls);
        mergeEnv.put("MODELMERGE_DATA_DIR", work.resolve("merge").toString());
        mergeEnv.put("MODELMERGE_MERGE_LOCAL_ROOTS", work.resolve("local").toString());
        mergeEnv.put("MODELMERGE_MERGE_OUTPUT_ROOT", work.resolve("local/merged").toUri().toString());
        mergeEnv.put("MODELMERGE_MERGE_REGISTRY_URL", "https://127.0.0.1:" + registry.port());
        TestSystem.registryToken(mergeEnv);
        // the merge service trusts the registry's certificate as any JVM client does: its trust store
        mergeEnv.put("JAVA_TOOL_OPTIONS", "-Djavax.net.ssl.trustStore=" + truststore + " -Djavax.net.ssl.trustStorePassword="
                + PASSWORD + " -Djavax.net.ssl.trustStoreType=PKCS12");
        merge = ServiceProcess.start("merge-service", "modelmerge.merge.jar", mergeEnv, work, trust);

        for (int m = 0; m < 3; m++) {
            Path dir = MergeServiceIT.SmallModels.write(work.resolve("local/tls-" + m), m, MergeServiceIT.SmallModels.SMALL);
            call("POST", "models/team/tls-" + m + "/versions", Map.of("storage_uri", dir.toUri().toString(),
                    "create_model", Map.of()), 201);
        }
    }

    @AfterAll
    static void stop() throws Exception {
        for (ServiceProcess service : new ServiceProcess[] {merge, registry}) {
            if (service != null) {
                service.close();
            }
        }
        TestSystem.deleteTree(work);
    }

    @Test
    void restAndGrpcRunOverTlsAndPlaintextIsRefused() throws Exception {
        assertEquals("admin", call("GET", "tokens/self", null, 200).get("name").asText());
        // plaintext HTTP to the TLS port gets no HTTP answer
        assertThrows(IOException.class, () -> HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + registry.port() + "/q/health/ready")).build(),
                HttpResponse.BodyHandlers.discarding()));

        ManagedChannel secure = Grpc.newChannelBuilderForAddress("127.0.0.1", merge.port(),
                TlsChannelCredentials.newBuilder().trustManager(work.resolve("server.pem").toFile()).build()).build();
        ManagedChannel plain = ManagedChannelBuilder.forAddress("127.0.0.1", merge.port()).usePlaintext().build();
        try {
            MergeServiceGrpc.MergeServiceBlockingStub jobs = TestSystem.stub(secure, TestSystem.ADMIN_TOKEN);
            String recipe = """
                    merge_method: linear
                    models:
                      - model: team/tls-1
                        parameters: {weight: 0.5}
                      - model: team/tls-2
                        parameters: {weight: 0.5}
                    dtype: float32
                    """;
            Job job = jobs.submitMerge(TestSystem.request(recipe, "team/tls-merged"));
            Job done = job;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (!List.of(JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED).contains(done.getState())
                    && System.nanoTime() < deadline) {
                Thread.sleep(200);
                done = jobs.getJob(io.modelmerge.proto.v1.JobRef.newBuilder().setId(job.getId()).build());
            }
            assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
            // the merge service resolved the inputs and registered the result over HTTPS
            assertEquals("team/tls-merged@1", done.getResultVersion());
            assertEquals(1, call("GET", "models/team/tls-merged/versions", null, 200).get("total").asInt());

            StatusRuntimeException refused = assertThrows(StatusRuntimeException.class, () -> TestSystem.stub(plain,
                    TestSystem.ADMIN_TOKEN).listJobs(ListJobsRequest.getDefaultInstance()));
            assertEquals(Status.Code.UNAVAILABLE, refused.getStatus().getCode(), refused.getMessage());
        } finally {
            secure.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            plain.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    private static JsonNode call(String method, String path, Object body, int expected) throws Exception {
        HttpResponse<String> response = https.send(HttpRequest.newBuilder(URI.create("https://127.0.0.1:"
                + registry.port() + "/api/v1/" + path)).header("Content-Type", "application/json")
                .header("Authorization", "Bearer " + TestSystem.ADMIN_TOKEN)
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofByteArray(TestSystem.JSON.writeValueAsBytes(body))).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(expected, response.statusCode(), method + " " + path + ": " + response.body());
        return TestSystem.JSON.readTree(response.body());
    }

    private static void keytool(String... arguments) throws Exception {
        List<String> command = new java.util.ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin",
                "keytool").toString()));
        command.addAll(List.of(arguments));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes());
        if (process.waitFor() != 0) {
            throw new IllegalStateException("keytool " + arguments[0] + " failed: " + output);
        }
    }
}
