package io.modelmerge.registry;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.endsWith;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.hasSize;
import static org.hamcrest.Matchers.startsWith;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.path.json.JsonPath;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

@QuarkusTest
class VersionRegistrationTest extends RegistryTest {

    @Test
    void registersAVersionWithChecksumsAndASummaryReadFromTheHeader() throws Exception {
        String model = "team/" + unique("base");
        createModel(model).then().statusCode(201);
        Path dir = localDir("base");
        Path file = TinyCheckpoints.write(dir, 1, Map.of("a", 6, "b", 10));
        Files.writeString(dir.resolve("config.json"), """
                {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4, "secret": "x"}""");

        JsonPath version = register(model, Map.of("storage_uri", dir.toUri().toString(), "metrics", Map.of("acc", 0.5),
                "tags", Map.of("stage", "nightly")))
                .then().statusCode(201).header("Location", endsWith("/api/v1/models/" + model + "/versions/1"))
                .extract().jsonPath();
        assertEquals(1, version.getInt("version"));
        assertEquals("READY", version.getString("status"));
        assertEquals("checkpoint", version.getString("format"));
        assertEquals(2, version.getInt("summary.tensor_count"));
        assertEquals(16, version.getLong("summary.parameter_count"));
        assertEquals(16, version.getLong("summary.dtypes.F32"));
        assertEquals("LlamaForCausalLM", version.getString("summary.architecture"));
        assertEquals(4, version.getInt("summary.config.hidden_size"));
        assertNull(version.get("summary.config.secret"));
        assertEquals(0.5, version.getDouble("metrics.acc"));
        assertEquals(List.of("config.json", "model.safetensors"), version.getList("files.path"));
        assertEquals(sha256(Files.readAllBytes(file)), version.getString("files[1].sha256"));
        assertEquals(Files.size(file), version.getLong("files[1].size"));

        given().get("/api/v1/models/" + model + "/versions/1").then().statusCode(200)
                .body("files[1].sha256", equalTo(sha256(Files.readAllBytes(file))));
        given().get("/api/v1/models/" + model + "/versions/1/files").then().statusCode(200)
                .body("[1].download_url", equalTo(file.toUri().toString()));
        given().get("/api/v1/models/" + model).then().body("latest_version", equalTo(1)).body("version_count", equalTo(1));
    }

    @Test
    void fiftyConcurrentRegistrationsOfDistinctContentGetVersionsOneToFifty() throws Exception {
        String model = "team/" + unique("busy");
        createModel(model).then().statusCode(201);
        List<String> uris = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            Path dir = localDir("busy-" + i);
            TinyCheckpoints.write(dir, 1000 + i);
            uris.add(dir.toUri().toString());
        }
        List<JsonPath> results = concurrently(uris.stream().map(uri -> (Callable<JsonPath>) () ->
                register(model, uri).then().statusCode(201).extract().jsonPath()).toList());

        TreeSet<Integer> numbers = new TreeSet<>();
        results.forEach(r -> numbers.add(r.getInt("version")));
        assertEquals(50, numbers.size());
        assertEquals(1, numbers.first());
        assertEquals(50, numbers.last());
        given().get("/api/v1/models/" + model + "/versions?page_size=200").then()
                .body("total", equalTo(50)).body("items", hasSize(50)).body("items[0].version", equalTo(50));
    }

    @Test
    void twentyConcurrentRegistrationsOfTheSameContentGetOneVersion() throws Exception {
        String model = "team/" + unique("same");
        createModel(model).then().statusCode(201);
        Path dir = localDir("same");
        TinyCheckpoints.write(dir, 7);
        String uri = dir.toUri().toString();

        List<Callable<Integer>> calls = new ArrayList<>();
        List<Integer> versions = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            calls.add(() -> {
                var response = register(model, uri).then().extract();
                synchronized (versions) {
                    versions.add(response.jsonPath().getInt("version"));
                }
                return response.statusCode();
            });
        }
        List<Integer> statuses = concurrently(calls);
        assertEquals(1, statuses.stream().filter(s -> s == 201).count(), "one creates: " + statuses);
        assertEquals(19, statuses.stream().filter(s -> s == 200).count(), "the rest find it: " + statuses);
        assertEquals(List.of(1), versions.stream().distinct().toList());

        // The same content under another directory is still the same content.
        Path copy = localDir("same-copy");
        Files.copy(dir.resolve("model.safetensors"), copy.resolve("model.safetensors"));
        register(model, copy.toUri().toString()).then().statusCode(200).body("version", equalTo(1));
        given().get("/api/v1/models/" + model).then().body("version_count", equalTo(1));
    }

    @Test
    void resolveFollowsNumbersAliasesAndLatest() throws Exception {
        String model = "team/" + unique("resolve");
        createModel(model).then().statusCode(201);
        for (int i = 0; i < 3; i++) {
            Path dir = localDir("resolve");
            TinyCheckpoints.write(dir, 50 + i);
            register(model, dir.toUri().toString()).then().statusCode(201);
        }
        given().queryParam("ref", model).get("/api/v1/resolve").then().statusCode(200).body("version", equalTo(3))
                .body("files[0].download_url", startsWith("file:"));
        given().queryParam("ref", model + "@latest").get("/api/v1/resolve").then().body("version", equalTo(3));
        given().queryParam("ref", model + "@2").get("/api/v1/resolve").then().body("version", equalTo(2));
        given().queryParam("ref", model + "@9").get("/api/v1/resolve").then().statusCode(404)
                .body("detail", equalTo("Model " + model + " has no version 9"));
        given().queryParam("ref", model + "@prod").get("/api/v1/resolve").then().statusCode(404)
                .body("detail", equalTo("Model " + model + " has no alias 'prod'"));
    }

    static <T> List<T> concurrently(List<Callable<T>> calls) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(calls.size());
        try {
            CountDownLatch start = new CountDownLatch(1);
            List<Future<T>> futures = new ArrayList<>();
            for (Callable<T> call : calls) {
                futures.add(pool.submit(() -> {
                    start.await();
                    return call.call();
                }));
            }
            start.countDown();
            List<T> results = new ArrayList<>();
            for (Future<T> f : futures) {
                results.add(f.get());
            }
            return results;
        } finally {
            pool.shutdownNow();
        }
    }

    static String sha256(byte[] bytes) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }
}
