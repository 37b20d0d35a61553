package io.modelmerge.registry;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agroal.api.AgroalDataSource;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import jakarta.inject.Inject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Every refusal has its status, names the field or file, and leaves nothing registered. */
@QuarkusTest
class BadInputTest extends RegistryTest {

    @Inject
    AgroalDataSource dataSource;

    private String newModel() {
        String model = unique("bad") + "/model";
        createModel(model).then().statusCode(201);
        return model;
    }

    private static void assertNoVersions(String model) {
        given().get("/api/v1/models/" + model).then().body("version_count", equalTo(0));
    }

    @Test
    void badModelNamesAreRefusedNamingTheField() {
        for (String name : List.of("noslash", "a/b/c", "Team/Upper", "team/..", "../etc", "team/.hidden", "team/",
                "team/with space", "team/" + "x".repeat(97))) {
            createModel(name).then().statusCode(400).contentType("application/problem+json")
                    .body("errors[0].field", equalTo("name")).body("instance", equalTo("/api/v1/models"));
        }
        String model = newModel();
        createModel(model).then().statusCode(409).body("detail", containsString("already exists"));
    }

    @Test
    void malformedSafetensorsAre422NamingTheFileAndLeaveNoVersion() throws Exception {
        String model = newModel();
        Path dir = localDir("malformed");
        Path file = TinyCheckpoints.write(dir, 3);
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, Arrays.copyOf(bytes, bytes.length - 8));
        register(model, dir.toUri().toString()).then().statusCode(422)
                .body("detail", containsString(file.toString()))
                .body("errors[0].field", equalTo("storage_uri"));
        assertNoVersions(model);

        Files.write(file, "{not a header".getBytes());
        register(model, dir.toUri().toString()).then().statusCode(422).body("detail", containsString("model.safetensors"));
        assertNoVersions(model);

        // After the refusals the next good registration is version 1: nothing was half-registered.
        TinyCheckpoints.write(dir, 3);
        register(model, dir.toUri().toString()).then().statusCode(201).body("version", equalTo(1));
    }

    @Test
    void missingFilesAreRefused() throws Exception {
        String model = newModel();
        Path empty = localDir("empty");
        register(model, empty.toUri().toString()).then().statusCode(400)
                .body("errors[0].field", equalTo("storage_uri")).body("detail", containsString("nothing at"));
        register(model, empty.resolve("gone").toUri() + "/").then().statusCode(400);

        Path sharded = localDir("sharded");
        TinyCheckpoints.write(sharded, 4);
        Files.move(sharded.resolve("model.safetensors"), sharded.resolve("model-00001-of-00002.safetensors"));
        Files.writeString(sharded.resolve("model.safetensors.index.json"), """
                {"metadata": {"total_size": 128}, "weight_map": {"w": "model-00001-of-00002.safetensors",
                 "v": "model-00002-of-00002.safetensors"}}""");
        register(model, sharded.toUri().toString()).then().statusCode(422)
                .body("detail", containsString("model-00002-of-00002.safetensors, which is missing"));

        Path notAModel = localDir("readme-only");
        Files.writeString(notAModel.resolve("README.md"), "hello");
        register(model, notAModel.toUri().toString()).then().statusCode(422)
                .body("detail", containsString("no safetensors checkpoint here"));

        Path ok = localDir("ok");
        TinyCheckpoints.write(ok, 5);
        register(model, Map.of("storage_uri", ok.toUri().toString(), "expected_sha256",
                Map.of("model.safetensors", "0".repeat(64)))).then().statusCode(422)
                .body("detail", containsString("model.safetensors: sha256 is"));
        register(model, Map.of("storage_uri", "file:///etc/")).then().statusCode(400)
                .body("detail", containsString("is outside the local directories this service may read"));
        register(model, Map.of("storage_uri", "ftp://host/x")).then().statusCode(400);
        assertNoVersions(model);
    }

    @Test
    void unknownParentsFormatsAndRelationsAreRefused() throws Exception {
        String model = newModel();
        Path dir = localDir("parents");
        TinyCheckpoints.write(dir, 6);
        String uri = dir.toUri().toString();
        register(model, Map.of("storage_uri", uri, "parents", List.of(Map.of("ref", "nobody/none@1", "relation", "merge"))))
                .then().statusCode(400).body("errors[0].field", equalTo("parents[0].ref"))
                .body("detail", containsString("no version nobody/none@1"));
        register(model, Map.of("storage_uri", uri, "parents", List.of(Map.of("ref", model + "@1", "relation", "cousin"))))
                .then().statusCode(400).body("errors[0].field", equalTo("parents[0].relation"));
        register(model, Map.of("storage_uri", uri, "format", "onnx")).then().statusCode(400)
                .body("errors[0].field", equalTo("format"));
        register(model, Map.of("storage_uri", uri, "format", "peft_adapter")).then().statusCode(422);
        register(model, Map.of("storage_uri", uri, "format", "fisher")).then().statusCode(400)
                .body("errors[0].field", equalTo("parents"));
        register(model, Map.of("storage_uri", uri, "format", "gram")).then().statusCode(400)
                .body("errors[0].field", equalTo("parents")).body("detail", containsString("relation gram_of"));
        register(model, Map.of("storage_uri", uri, "metrics", Map.of("acc", "high"))).then().statusCode(400)
                .body("errors[0].field", equalTo("metrics.acc"));
        register(model, Map.of("storage_uri", uri, "colour", "blue")).then().statusCode(400)
                .body("errors[0].field", equalTo("colour"));
        given().contentType(ContentType.JSON).body("{\"storage_uri\": ").post("/api/v1/models/" + model + "/versions")
                .then().statusCode(400).body("errors[0].field", equalTo("body"));
        assertNoVersions(model);
        register("nobody/none", uri).then().statusCode(404).body("detail", equalTo("No model nobody/none"));
    }

    @Test
    void aModelWithVersionsCannotBeDeletedAndAReadyVersionCannotChange() throws Exception {
        String model = newModel();
        Path dir = localDir("keep");
        TinyCheckpoints.write(dir, 8);
        register(model, dir.toUri().toString()).then().statusCode(201);
        given().delete("/api/v1/models/" + model).then().statusCode(409).body("detail", containsString("1 version"));
        given().get("/api/v1/models/" + model + "/versions/x").then().statusCode(400);
        given().get("/api/v1/models/" + model + "/versions/2").then().statusCode(404);

        try (Connection c = dataSource.getConnection()) {
            SQLException e = assertThrows(SQLException.class, () -> c.createStatement()
                    .executeUpdate("UPDATE model_version SET storage_uri = 'file:///elsewhere/'"));
            assertTrue(e.getMessage().contains("immutable"), e.getMessage());
            assertThrows(SQLException.class, () -> c.createStatement().executeUpdate("DELETE FROM version_file"));
        }

        String empty = newModel();
        given().delete("/api/v1/models/" + empty).then().statusCode(204);
        given().get("/api/v1/models/" + empty).then().statusCode(404);
    }
}
