package io.modelmerge.registry;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.contains;
import static org.hamcrest.Matchers.containsInAnyOrder;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.hasSize;
import static org.hamcrest.Matchers.nullValue;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

@QuarkusTest
class LineageAndAliasTest extends RegistryTest {
    private int seed = 100;

    /** Registers a new version of {@code model} (created if needed) with these parents; returns its ref. */
    private String version(String model, Map<String, String> parents) throws Exception {
        given().contentType(ContentType.JSON).body(Map.of("name", model)).post("/api/v1/models");
        Path dir = localDir("lineage");
        TinyCheckpoints.write(dir, seed++);
        List<Map<String, String>> parentList = parents.entrySet().stream()
                .map(e -> Map.of("ref", e.getKey(), "relation", e.getValue())).toList();
        return register(model, Map.of("storage_uri", dir.toUri().toString(), "parents", parentList,
                "recipe", "merge_method: ties\n")).then().statusCode(201).extract().jsonPath().getString("ref");
    }

    /**
     * RegMean's Grams register as format gram naming their checkpoint (gram_of), as Fishers do (fisher_of); the
     * lineage shows the edge.
     */
    @Test
    void gramsAndFishersNameTheCheckpointTheyWereComputedFrom() throws Exception {
        String ns = unique("stats");
        String tuned = version(ns + "/tuned", Map.of());
        for (String format : List.of("gram", "fisher")) {
            Path dir = localDir(format);
            TinyCheckpoints.write(dir, seed++);
            given().contentType(ContentType.JSON).body(Map.of("name", ns + "/tuned-" + format)).post("/api/v1/models");
            String ref = register(ns + "/tuned-" + format, Map.of("storage_uri", dir.toUri().toString(), "format",
                    format, "parents", List.of(Map.of("ref", tuned, "relation", format + "_of"))))
                    .then().statusCode(201).body("format", equalTo(format)).extract().jsonPath().getString("ref");
            given().get("/api/v1/models/" + ns + "/tuned-" + format + "/versions/1/lineage").then().statusCode(200)
                    .body("edges.findAll { it.child == '" + ref + "' }.relation", contains(format + "_of"));
        }
    }

    /**
     * A stored delta (as mergectl delta writes it: delta.json beside delta.safetensors) registers as format delta
     * with its base (relation delta) and its fine-tune (delta_of); its summary shows the operation, the compression
     * ratio and the worst tensor; a delta recording another base's digest is refused naming both.
     */
    @Test
    void aDeltaVersionNamesItsBaseAndItsFineTuneAndIsCheckedAgainstTheBase() throws Exception {
        String ns = unique("deltas");
        String base = version(ns + "/base", Map.of());
        String tuned = version(ns + "/tuned", Map.of(base, "finetune"));
        String baseDigest = given().get("/api/v1/models/" + ns + "/base/versions/1").then().extract().jsonPath()
                .getString("content_digest");
        Path delta = localDir("delta");
        TinyCheckpoints.write(delta, 7);
        java.nio.file.Files.move(delta.resolve("model.safetensors"), delta.resolve("delta.safetensors"));
        String manifest = """
                {"format_version": 1, "operation": "bitdelta", "parameters": {"scope": "tensor"},
                 "base": {"ref": "%s", "digest": "%s"}, "fine_tune": {"ref": "%s", "digest": "sha256:00"},
                 "tensors": [{"name": "a", "encoding": "SIGNS", "relative_error": 0.02},
                             {"name": "b", "encoding": "DENSE", "relative_error": 0.0}],
                 "tied": {}, "delta_bytes": 1000, "fine_tune_bytes": 16000}""";
        java.nio.file.Files.writeString(delta.resolve("delta.json"), manifest.formatted(base, baseDigest, tuned));
        given().contentType(ContentType.JSON).body(Map.of("name", ns + "/tuned-bits")).post("/api/v1/models");
        String ref = register(ns + "/tuned-bits", Map.of("storage_uri", delta.toUri().toString(), "parents",
                List.of(Map.of("ref", base, "relation", "delta"), Map.of("ref", tuned, "relation", "delta_of"))))
                .then().statusCode(201).body("format", equalTo("delta"))
                .body("summary.delta.operation", equalTo("bitdelta"))
                .body("summary.delta.compression_ratio", equalTo(16.0f))
                .body("summary.delta.worst_tensor", equalTo("a"))
                .extract().jsonPath().getString("ref");
        given().get("/api/v1/models/" + ns + "/tuned-bits/versions/1/lineage").then().statusCode(200)
                .body("nodes.ref", containsInAnyOrder(ref, base, tuned))
                .body("edges.findAll { it.child == '" + ref + "' }.relation", containsInAnyOrder("delta", "delta_of"));

        Path other = localDir("delta-other");
        TinyCheckpoints.write(other, 8);
        java.nio.file.Files.move(other.resolve("model.safetensors"), other.resolve("delta.safetensors"));
        java.nio.file.Files.writeString(other.resolve("delta.json"), manifest.formatted(base, "sha256:feed", tuned));
        register(ns + "/tuned-bits", Map.of("storage_uri", other.toUri().toString(), "parents",
                List.of(Map.of("ref", base, "relation", "delta")))).then().statusCode(422)
                .body("detail", org.hamcrest.Matchers.containsString("taken from a base with content sha256:feed, but "
                        + base + " holds " + baseDigest));
        register(ns + "/tuned-bits", Map.of("storage_uri", other.toUri().toString(), "format", "checkpoint")).then()
                .statusCode(422).body("detail", org.hamcrest.Matchers.containsString("holds a stored delta"));
    }

    @Test
    void lineageOfASecondGenerationMergeIsTheWholeDag() throws Exception {
        String ns = unique("lab");
        String base = version(ns + "/base", Map.of());
        String math = version(ns + "/ft-math", Map.of(base, "finetune"));
        String code = version(ns + "/ft-code", Map.of(base, "finetune"));
        String chat = version(ns + "/ft-chat", Map.of(base, "finetune"));
        // Parents given through an alias are pinned to the version the alias pointed at.
        given().contentType(ContentType.JSON).body(Map.of("version", 1))
                .put("/api/v1/models/" + ns + "/ft-code/aliases/nightly").then().statusCode(200);
        String merge1 = version(ns + "/merged", Map.of(math, "merge", ns + "/ft-code@nightly", "merge"));
        String merge2 = version(ns + "/merged", Map.of(merge1, "merge", chat, "merge"));

        given().get("/api/v1/models/" + ns + "/merged/versions/2/lineage").then().statusCode(200)
                .body("root", equalTo(merge2))
                .body("nodes.ref", containsInAnyOrder(merge2, merge1, math, code, chat, base))
                .body("edges", hasSize(7))
                .body("edges.findAll { it.child == '" + merge2 + "' }.parent", containsInAnyOrder(merge1, chat))
                .body("edges.findAll { it.child == '" + merge1 + "' }.parent", containsInAnyOrder(math, code))
                .body("edges.findAll { it.parent == '" + base + "' }.child", containsInAnyOrder(math, code, chat))
                .body("edges.findAll { it.child == '" + merge1 + "' }.relation", contains("merge", "merge"));
        given().get("/api/v1/models/" + ns + "/merged/versions/2/lineage?depth=1").then()
                .body("nodes.ref", containsInAnyOrder(merge2, merge1, chat)).body("edges", hasSize(2));
        given().get("/api/v1/models/" + ns + "/merged/versions/1").then()
                .body("parents.ref", contains(code, math)).body("recipe", equalTo("merge_method: ties\n"));
        given().get("/api/v1/models/" + ns + "/base/versions/1/children").then()
                .body("child", containsInAnyOrder(math, code, chat));
        given().get("/api/v1/models/" + ns + "/merged/versions/2/lineage?depth=0").then().statusCode(400)
                .body("errors[0].field", equalTo("depth"));
    }

    @Test
    void anAliasMovedThreeTimesHasThreeMovesAndResolveFollowsIt() throws Exception {
        String model = unique("team") + "/llama-merged";
        for (int i = 0; i < 3; i++) {
            version(model, Map.of());
        }
        String aliasUrl = "/api/v1/models/" + model + "/aliases/prod";
        // moved_by is the name of the token that moved it
        String ciBot = given().contentType(ContentType.JSON).body(Map.of("name", "ci-bot", "scopes", List.of("promote"),
                "namespaces", List.of(model.split("/")[0] + "/*"), "aliases", List.of("prod")))
                .post("/api/v1/tokens").then().statusCode(201).extract().path("token");
        for (int target : new int[] {1, 3, 2}) {
            given().contentType(ContentType.JSON).header("Authorization", "Bearer " + ciBot).body(Map.of("version", target))
                    .put(aliasUrl).then().statusCode(200).body("version", equalTo(target));
            given().queryParam("ref", model + "@prod").get("/api/v1/resolve").then().body("version", equalTo(target));
        }
        // Moving an alias to where it already is is not a move.
        given().contentType(ContentType.JSON).body(Map.of("version", 2)).put(aliasUrl).then().statusCode(200);

        given().get(aliasUrl).then().statusCode(200)
                .body("history", hasSize(3))
                .body("history.from_version", contains(nullValue(), equalTo(1), equalTo(3)))
                .body("history.to_version", contains(1, 3, 2))
                .body("history.moved_by", contains("ci-bot", "ci-bot", "ci-bot"));
        given().get("/api/v1/models/" + model + "/versions/2").then().body("aliases", contains("prod"));
        given().get("/api/v1/models/" + model + "/aliases").then().body("alias", contains("prod"));

        given().delete(aliasUrl).then().statusCode(204);
        given().get(aliasUrl).then().statusCode(404);
        given().queryParam("ref", model + "@prod").get("/api/v1/resolve").then().statusCode(404);
        given().delete(aliasUrl).then().statusCode(404);
        given().contentType(ContentType.JSON).body(Map.of("version", 9)).put(aliasUrl).then().statusCode(400)
                .body("errors[0].field", equalTo("version"));
        given().contentType(ContentType.JSON).body(Map.of("version", 1))
                .put("/api/v1/models/" + model + "/aliases/latest").then().statusCode(400);
        given().contentType(ContentType.JSON).body(Map.of("version", 1))
                .put("/api/v1/models/" + model + "/aliases/7up").then().statusCode(400);
    }
}
