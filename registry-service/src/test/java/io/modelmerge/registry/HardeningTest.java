package io.modelmerge.registry;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.not;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.junit.jupiter.api.Test;

/**
 * What probing the running registry as an attacker found: files outside its roots read through links, answers
 * that leak file contents or internals, unbounded inputs, and the wrong status codes. Each case fails on the code
 * before the hardening.
 */
@QuarkusTest
class HardeningTest extends RegistryTest {
    @ConfigProperty(name = "quarkus.http.test-port")
    int port;

    private String newModel() {
        String model = unique("hard") + "/model";
        createModel(model).then().statusCode(201);
        return model;
    }

    @Test
    void aSymbolicLinkOutOfTheRootIsNeverRegisteredOrRead() throws Exception {
        String model = newModel();
        Path outside = Files.createTempDirectory("registry-outside-");
        TinyCheckpoints.write(outside, 3, Map.of("w", 4));
        Path linkedFile = localDir("linked-file");
        Files.createSymbolicLink(linkedFile.resolve("model.safetensors"), outside.resolve("model.safetensors"));
        register(model, linkedFile.toUri().toString()).then().statusCode(400)
                .body("detail", containsString("is a symbolic link leading out of the local directories"));

        Path environ = localDir("environ");
        Files.createSymbolicLink(environ.resolve("model.safetensors"), Path.of("/proc/self/environ"));
        register(model, environ.toUri().toString()).then().statusCode(400)
                .body("detail", containsString("is a symbolic link leading out"))
                .body("detail", not(containsString("header")));

        Path linkedDir = config.allowedLocalRoots().getFirst().resolve(unique("linked-dir"));
        Files.createSymbolicLink(linkedDir, outside);
        register(model, linkedDir.toUri() + "/").then().statusCode(400)
                .body("detail", containsString("leads out of the local directories this service may read"));
        given().get("/api/v1/models/" + model).then().body("version_count", equalTo(0));
    }

    @Test
    void filesNoLayoutDefinesAreListedAsIgnoredAndNeverRead() throws Exception {
        String model = newModel();
        Path dir = localDir("stray");
        TinyCheckpoints.write(dir, 4, Map.of("w", 4));
        Files.writeString(dir.resolve("notes.txt"), "private");
        Files.createSymbolicLink(dir.resolve("env.txt"), Path.of("/proc/self/environ"));
        JsonPath version = register(model, dir.toUri().toString()).then().statusCode(201).extract().jsonPath();
        assertEquals(List.of("model.safetensors"), version.getList("files.path"));
        assertEquals(List.of("env.txt", "notes.txt"), version.getList("summary.ignored_files"));
    }

    /** What the merge service registers with: the model appears with its first version, never without one. */
    @Test
    void aModelIsCreatedOnlyAlongWithItsFirstVersion() throws Exception {
        String model = unique("first") + "/model";
        register(model, Map.of("storage_uri", "file:///etc/", "create_model", Map.of("description", "merged")))
                .then().statusCode(400);
        given().get("/api/v1/models/" + model).then().statusCode(404);
        Path dir = localDir("first");
        TinyCheckpoints.write(dir, 9, Map.of("w", 4));
        register(model, dir.toUri().toString()).then().statusCode(404); // without create_model
        register(model, Map.of("storage_uri", dir.toUri().toString(), "create_model",
                Map.of("description", "merged", "tags", Map.of("team", "a")))).then().statusCode(201)
                .body("version", equalTo(1));
        given().get("/api/v1/models/" + model).then().statusCode(200).body("description", equalTo("merged"))
                .body("tags.team", equalTo("a")).body("version_count", equalTo(1));
        // The same content again: the existing version, and the model is left as it is.
        register(model, Map.of("storage_uri", dir.toUri().toString(), "create_model", Map.of("description", "other")))
                .then().statusCode(200).body("version", equalTo(1));
        given().get("/api/v1/models/" + model).then().body("description", equalTo("merged"));
    }

    @Test
    void pathsOutsideTheRootsAreRefusedWithoutReadingThem() {
        String model = newModel();
        for (String uri : List.of("file:///etc/", "file:///etc/shadow", "file:///proc/self/environ",
                config.allowedLocalRoots().getFirst().toUri() + "../registry-db/")) {
            register(model, uri).then().statusCode(400).contentType("application/problem+json")
                    .body("errors[0].field", equalTo("storage_uri"))
                    .body("detail", containsString("is outside the local directories this service may read"
                            + " (modelmerge.registry.local-roots)"))
                    .body("detail", not(containsString("header length")));
        }
    }

    @Test
    void descriptionsTagsAndRecipesOverTheirLimitsAre400NamingTheField() throws Exception {
        given().contentType(ContentType.JSON).body(Map.of("name", unique("big") + "/m", "description", "x".repeat(8193)))
                .post("/api/v1/models").then().statusCode(400).body("errors[0].field", equalTo("description"))
                .body("detail", containsString("8193 characters, over the limit of 8192"));
        Map<String, String> tags = new HashMap<>();
        for (int i = 0; i < 65; i++) {
            tags.put("k" + i, "v");
        }
        given().contentType(ContentType.JSON).body(Map.of("name", unique("big") + "/m", "tags", tags))
                .post("/api/v1/models").then().statusCode(400).body("detail", containsString("65 tags, over the limit of 64"));
        given().contentType(ContentType.JSON).body(Map.of("name", unique("big") + "/m", "tags", Map.of("k", "v".repeat(257))))
                .post("/api/v1/models").then().statusCode(400).body("errors[0].field", equalTo("tags.k"));
        given().contentType(ContentType.JSON).body(Map.of("name", unique("big") + "/m", "description", "a\u0000b"))
                .post("/api/v1/models").then().statusCode(400).body("detail", containsString("NUL"));

        String model = newModel();
        Path dir = localDir("recipe");
        TinyCheckpoints.write(dir, 5, Map.of("w", 4));
        register(model, Map.of("storage_uri", dir.toUri().toString(), "recipe", "x".repeat(65537))).then()
                .statusCode(400).body("errors[0].field", equalTo("recipe"));
        given().patch("/api/v1/models/" + model).then().statusCode(400);
        given().contentType(ContentType.JSON).body(Map.of("description", "y".repeat(9000)))
                .patch("/api/v1/models/" + model).then().statusCode(400).body("errors[0].field", equalTo("description"));
    }

    @Test
    void malformedQueryParametersAre400NotFound() {
        given().get("/api/v1/models?page=abc").then().statusCode(400).contentType("application/problem+json")
                .body("errors[0].field", equalTo("page")).body("detail", containsString("'abc'"));
        given().get("/api/v1/models?page_size=1x").then().statusCode(400).body("errors[0].field", equalTo("page_size"));
    }

    @Test
    void badBodiesAreNamedInJsonTermsNotJavaClasses() throws Exception {
        String model = newModel();
        Path dir = localDir("json");
        TinyCheckpoints.write(dir, 6, Map.of("w", 4));
        register(model, Map.of("storage_uri", dir.toUri().toString(), "metrics", Map.of("acc", "high"))).then()
                .statusCode(400).body("detail", equalTo("metrics.acc: must be a number"));
        register(model, Map.of("storage_uri", dir.toUri().toString(), "colour", "blue")).then().statusCode(400)
                .body("detail", containsString("colour: is not a field of this request (fields: "))
                .body("detail", not(containsString("java")));
        register(model, Map.of("storage_uri", 5)).then().statusCode(400).body("detail", not(containsString("java")));
        register(model, Map.of("storage_uri", dir.toUri().toString(), "parents", "nope")).then().statusCode(400)
                .body("detail", equalTo("parents: must be a list"));
    }

    @Test
    void oversizedRequestsAreAnsweredWithProblemsToo() throws Exception {
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        URI base = URI.create("http://127.0.0.1:" + port);
        HttpResponse<String> uri = http.send(HttpRequest.newBuilder(base.resolve("/api/v1/models?query="
                + "q".repeat(9000))).build(), HttpResponse.BodyHandlers.ofString());
        assertProblem(uri, 414, "the request URI is 9021 bytes, over the limit of 8192");

        HttpResponse<String> headers = http.send(HttpRequest.newBuilder(base.resolve("/api/v1/models"))
                .header("X-Padding", "h".repeat(40_000)).build(), HttpResponse.BodyHandlers.ofString());
        assertProblem(headers, 431, "over the limit of 32768");

        HttpResponse<String> body = http.send(HttpRequest.newBuilder(base.resolve("/api/v1/models"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"name\": \"" + "n".repeat(2 << 20) + "\"}")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertProblem(body, 413, "over the limit of 1048576");

        // Without a Content-Length (chunked) the size shows only while the body is read: the same answer.
        byte[] big = ("{\"name\": \"" + "n".repeat(2 << 20) + "\"}").getBytes();
        HttpResponse<String> chunked = http.send(HttpRequest.newBuilder(base.resolve("/api/v1/models"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(big))).build(),
                HttpResponse.BodyHandlers.ofString());
        assertProblem(chunked, 413, "over the limit of 1048576");
        byte[] small = ("{\"name\": \"" + unique("chunked") + "/m\"}").getBytes();
        assertEquals(201, http.send(HttpRequest.newBuilder(base.resolve("/api/v1/models"))
                .header("Content-Type", "application/json")
                .header("Authorization", "Bearer " + RegistryTestResources.ADMIN_TOKEN)
                .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(small))).build(),
                HttpResponse.BodyHandlers.ofString()).statusCode());
    }

    private static void assertProblem(HttpResponse<String> response, int status, String detail) {
        assertEquals(status, response.statusCode(), response.body());
        assertEquals("application/problem+json", response.headers().firstValue("Content-Type").orElse(""));
        JsonPath problem = JsonPath.from(response.body());
        assertEquals(status, problem.getInt("status"));
        String text = problem.getString("detail");
        assertFalse(text == null || !text.contains(detail), response.body());
    }
}
