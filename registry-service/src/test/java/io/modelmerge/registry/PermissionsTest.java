package io.modelmerge.registry;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import io.restassured.specification.RequestSpecification;
import java.nio.file.Path;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Every REST endpoint × every kind of caller: no token, an expired one, a revoked one, and tokens with read, write,
 * promote (of {@code nightly} only), submit and admin on the team's namespace, and one with every scope but admin on
 * another namespace. Each answer is checked (401, 403 or the endpoint's success), and afterwards nothing a refused
 * call would have changed has changed.
 */
@QuarkusTest
class PermissionsTest extends RegistryTest {
    private static final List<String> CALLERS = List.of("none", "expired", "revoked", "read", "write",
            "promote-nightly", "submit", "admin", "other");

    /** One endpoint: how to call it as {@code caller}, and which callers it lets through with which status. */
    private record Call(String name, Send send, Set<String> allowed, int success) {
    }

    @FunctionalInterface
    private interface Send {
        Response as(String caller) throws Exception;
    }

    @Test
    void everyEndpointAnswersEveryCallerAsItsScopesAndNamespacesSay() throws Exception {
        String team = unique("team");
        String other = unique("other");
        String model = team + "/m";
        // a webhook of the team's, so the events below leave deliveries to list and replay (to a closed port)
        String hook = given().contentType(ContentType.JSON).body(Map.of("namespace", team, "url",
                "http://127.0.0.1:9/setup", "events", List.of("version.ready"))).post("/api/v1/webhooks").then()
                .statusCode(201).extract().path("id");
        Path v1 = localDir("perm-v1");
        TinyCheckpoints.write(v1, 1);
        register(model, Map.of("storage_uri", v1.toUri().toString(), "create_model", Map.of("description", "kept")))
                .then().statusCode(201);
        register(other + "/m", Map.of("storage_uri", v1.toUri().toString(), "create_model", Map.of()))
                .then().statusCode(201);
        given().contentType(ContentType.JSON).body(Map.of("version", 1)).put("/api/v1/models/" + model
                + "/aliases/prod").then().statusCode(200);

        token("read", List.of("read"), team + "/*", List.of(), null);
        token("write", List.of("write"), team + "/*", List.of(), null);
        token("promote-nightly", List.of("promote"), team + "/*", List.of("nightly"), null);
        token("submit", List.of("submit"), team + "/*", List.of(), null);
        token("admin", List.of("admin"), team + "/*", List.of(), null);
        token("other", List.of("read", "write", "promote", "submit"), other + "/*", List.of(), null);
        String revoked = token("revoked", List.of("admin"), team + "/*", List.of(), null);
        given().delete("/api/v1/tokens/" + revoked.substring(3, 13)).then().statusCode(204);
        OffsetDateTime soon = OffsetDateTime.now().plusSeconds(1);
        token("expired", List.of("admin"), team + "/*", List.of(), soon);
        while (!OffsetDateTime.now().isAfter(soon.plusNanos(200_000_000))) {
            Thread.sleep(100);
        }

        Set<String> readers = Set.of("read", "write", "promote-nightly", "submit", "admin");
        Set<String> writers = Set.of("write", "admin");
        Set<String> promoters = Set.of("promote-nightly", "admin");
        Set<String> admins = Set.of("admin");
        Set<String> anyValid = Set.of("read", "write", "promote-nightly", "submit", "admin", "other");
        String versions = "/api/v1/models/" + model + "/versions";
        List<Call> calls = new ArrayList<>();
        calls.add(new Call("search", c -> as(c).get("/api/v1/models?query=" + team), anyValid, 200));
        calls.add(new Call("create model", c -> as(c).contentType(ContentType.JSON)
                .body(Map.of("name", team + "/created-by-" + c)).post("/api/v1/models"), writers, 201));
        calls.add(new Call("get model", c -> as(c).get("/api/v1/models/" + model), readers, 200));
        calls.add(new Call("patch model", c -> as(c).contentType(ContentType.JSON)
                .body(Map.of("description", "patched by " + c)).patch("/api/v1/models/" + model), writers, 200));
        calls.add(new Call("delete model", c -> {
            String empty = team + "/empty-" + c;
            createModel(empty).then().statusCode(201);
            return as(c).delete("/api/v1/models/" + empty);
        }, admins, 204));
        calls.add(new Call("register version", c -> {
            Path files = localDir("perm-" + c);
            TinyCheckpoints.write(files, c.hashCode());
            return as(c).contentType(ContentType.JSON).body(Map.of("storage_uri", files.toUri().toString()))
                    .post(versions);
        }, writers, 201));
        calls.add(new Call("versions", c -> as(c).get(versions), readers, 200));
        calls.add(new Call("version", c -> as(c).get(versions + "/1"), readers, 200));
        calls.add(new Call("files", c -> as(c).get(versions + "/1/files"), readers, 200));
        calls.add(new Call("lineage", c -> as(c).get(versions + "/1/lineage"), readers, 200));
        calls.add(new Call("children", c -> as(c).get(versions + "/1/children"), readers, 200));
        calls.add(new Call("aliases", c -> as(c).get("/api/v1/models/" + model + "/aliases"), readers, 200));
        calls.add(new Call("alias", c -> as(c).get("/api/v1/models/" + model + "/aliases/prod"), readers, 200));
        calls.add(new Call("move nightly", c -> as(c).contentType(ContentType.JSON).body(Map.of("version", 1))
                .put("/api/v1/models/" + model + "/aliases/nightly"), promoters, 200));
        calls.add(new Call("move prod", c -> as(c).contentType(ContentType.JSON).body(Map.of("version", 1))
                .put("/api/v1/models/" + model + "/aliases/prod"), admins, 200));
        calls.add(new Call("delete nightly", c -> {
            given().contentType(ContentType.JSON).body(Map.of("version", 1))
                    .put("/api/v1/models/" + model + "/aliases/nightly").then().statusCode(200);
            return as(c).delete("/api/v1/models/" + model + "/aliases/nightly");
        }, promoters, 204));
        calls.add(new Call("resolve", c -> as(c).get("/api/v1/resolve?ref=" + model + "@prod"), readers, 200));
        calls.add(new Call("index", c -> as(c).contentType(ContentType.JSON)
                .body(Map.of("uri", localDir("index-" + c).toUri().toString(), "namespace", team))
                .post("/api/v1/index"), writers, 202));
        String indexTask = given().contentType(ContentType.JSON)
                .body(Map.of("uri", localDir("index-task").toUri().toString(), "namespace", team))
                .post("/api/v1/index").then().statusCode(202).extract().path("id");
        calls.add(new Call("index task", c -> as(c).get("/api/v1/index/" + indexTask), readers, 200));
        calls.add(new Call("create token", c -> as(c).contentType(ContentType.JSON).body(Map.of("name", "by-" + c,
                "scopes", List.of("read"), "namespaces", List.of(team + "/*"))).post("/api/v1/tokens"), admins, 201));
        calls.add(new Call("list tokens", c -> as(c).get("/api/v1/tokens"), admins, 200));
        calls.add(new Call("who am I", c -> as(c).get("/api/v1/tokens/self"), anyValid, 200));
        calls.add(new Call("revoke token", c -> {
            String victim = token("victim-" + c, List.of("read"), team + "/*", List.of(), null);
            return as(c).delete("/api/v1/tokens/" + victim.substring(3, 13));
        }, admins, 204));

        calls.add(new Call("register webhook", c -> as(c).contentType(ContentType.JSON).body(Map.of("namespace", team,
                "url", "http://127.0.0.1:9/by-" + c, "events", List.of("alias.moved"))).post("/api/v1/webhooks"),
                admins, 201));
        calls.add(new Call("list webhooks", c -> as(c).get("/api/v1/webhooks?namespace=" + team), admins, 200));
        calls.add(new Call("webhook deliveries", c -> as(c).get("/api/v1/webhooks/" + hook + "/deliveries"), admins,
                200));
        long delivery = ((Number) given().get("/api/v1/webhooks/" + hook + "/deliveries").then().statusCode(200)
                .extract().path("[0].id")).longValue();
        calls.add(new Call("replay delivery", c -> as(c).post("/api/v1/webhooks/" + hook + "/deliveries/" + delivery
                + "/replay"), admins, 202));
        calls.add(new Call("delete webhook", c -> {
            String victim = given().contentType(ContentType.JSON).body(Map.of("namespace", team, "url",
                    "http://127.0.0.1:9/victim-" + c, "events", List.of("alias.moved"))).post("/api/v1/webhooks")
                    .then().statusCode(201).extract().path("id");
            return as(c).delete("/api/v1/webhooks/" + victim);
        }, admins, 204));
        calls.add(new Call("report a finished job", c -> as(c).contentType(ContentType.JSON).body(Map.of("model", model,
                "job", Map.of("id", "job-of-" + c))).post("/api/v1/events/job-finished"), writers, 202));

        List<String> wrong = new ArrayList<>();
        for (Call call : calls) {
            for (String caller : CALLERS) {
                int expected = switch (caller) {
                    case "none", "expired", "revoked" -> 401;
                    default -> call.allowed().contains(caller) ? call.success() : 403;
                };
                Response answer = call.send().as(caller);
                if (answer.statusCode() != expected) {
                    wrong.add(call.name() + " as " + caller + ": " + answer.statusCode() + " (expected " + expected
                            + ") " + answer.asString());
                } else if (expected == 401 && !String.valueOf(answer.header("WWW-Authenticate")).startsWith("Bearer")) {
                    wrong.add(call.name() + " as " + caller + ": a 401 without WWW-Authenticate: Bearer");
                }
            }
        }
        assertTrue(wrong.isEmpty(), String.join("\n", wrong));

        // Nothing a refused call asked for happened.
        assertEquals("patched by admin", given().get("/api/v1/models/" + model).then().extract().path("description"));
        for (String caller : CALLERS) {
            int created = given().get("/api/v1/models/" + team + "/created-by-" + caller).statusCode();
            assertEquals(writers.contains(caller) ? 200 : 404, created, "model created by " + caller);
            int empty = given().get("/api/v1/models/" + team + "/empty-" + caller).statusCode();
            assertEquals(admins.contains(caller) ? 404 : 200, empty, "empty model deletable by " + caller);
        }
        assertEquals(1 + writers.size(), (int) given().get(versions).then().extract().path("total"));
        List<String> movers = given().get("/api/v1/models/" + model + "/aliases/prod").then().extract()
                .path("history.moved_by");
        assertEquals(1, movers.size(), "prod was moved once, when the test set it up (a move to where it is is none): "
                + movers);
        List<String> tokenNames = given().get("/api/v1/tokens").then().extract().path("name");
        assertTrue(tokenNames.contains("by-admin"));
        assertFalse(tokenNames.stream().anyMatch(n -> n.startsWith("by-") && !n.equals("by-admin")), tokenNames.toString());
        List<String> hooks = given().get("/api/v1/webhooks?namespace=" + team).then().extract().path("url");
        for (String caller : CALLERS) {
            assertEquals(admins.contains(caller), hooks.contains("http://127.0.0.1:9/by-" + caller), "webhook by " + caller);
            assertEquals(!admins.contains(caller), hooks.contains("http://127.0.0.1:9/victim-" + caller),
                    "webhook deleted by " + caller);
        }
        List<Integer> replays = given().get("/api/v1/webhooks/" + hook + "/deliveries").then().extract()
                .path("findAll { it.replay_of != null }.replay_of");
        assertEquals(admins.size(), replays.size(), "replays: " + replays);
        // the other namespace's token searched and saw only its own
        List<String> seen = as("other").get("/api/v1/models?query=").then().extract().path("items.name");
        assertTrue(seen.stream().allMatch(n -> n.startsWith(other + "/")), seen.toString());
    }

    /** The token of each caller that has one. */
    private final Map<String, String> issued = new LinkedHashMap<>();

    /** A request as {@code caller}: with its token, or with none. */
    private RequestSpecification as(String caller) {
        if (caller.equals("none")) {
            // the tests' filter adds the admin token to a request without one: an empty scheme it leaves alone
            return given().header("Authorization", "");
        }
        return given().header("Authorization", "Bearer " + issued.get(caller));
    }

    /** A new token (made by the bootstrap admin), remembered as the caller {@code name}. */
    private String token(String name, List<String> scopes, String grant, List<String> aliases, OffsetDateTime expires) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("name", name);
        body.put("scopes", scopes);
        body.put("namespaces", List.of(grant));
        body.put("aliases", aliases);
        if (expires != null) {
            body.put("expires_at", expires.toString());
        }
        String token = given().contentType(ContentType.JSON).body(body).post("/api/v1/tokens").then()
                .statusCode(201).extract().path("token");
        issued.put(name, token);
        return token;
    }
}
