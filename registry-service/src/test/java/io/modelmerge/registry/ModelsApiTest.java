package io.modelmerge.registry;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.contains;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;
import static org.hamcrest.Matchers.hasKey;
import static org.hamcrest.Matchers.not;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import java.util.Map;
import org.junit.jupiter.api.Test;

@QuarkusTest
class ModelsApiTest extends RegistryTest {

    @Test
    void modelsAreCreatedSearchedPatchedAndDeleted() {
        String ns = unique("search");
        given().contentType(ContentType.JSON).body(Map.of("name", ns + "/llama-math", "description", "Math fine-tune",
                "tags", Map.of("task", "math", "base", "llama"))).post("/api/v1/models").then().statusCode(201)
                .header("Location", containsString("/api/v1/models/" + ns + "/llama-math"));
        given().contentType(ContentType.JSON).body(Map.of("name", ns + "/llama-code",
                "tags", Map.of("task", "code", "base", "llama"))).post("/api/v1/models").then().statusCode(201);
        given().contentType(ContentType.JSON).body(Map.of("name", ns + "/mistral-chat",
                "tags", Map.of("task", "chat"))).post("/api/v1/models").then().statusCode(201);

        given().queryParam("query", ns + "/llama").get("/api/v1/models").then().statusCode(200)
                .body("total", equalTo(2)).body("items.name", contains(ns + "/llama-code", ns + "/llama-math"));
        given().queryParam("query", ns).queryParam("tag", "base:llama").queryParam("tag", "task:math")
                .get("/api/v1/models").then().body("items.name", contains(ns + "/llama-math"));
        given().queryParam("query", "MATH FINE").get("/api/v1/models").then()
                .body("items.name", contains(ns + "/llama-math"));
        given().queryParam("query", ns).queryParam("page_size", 1).queryParam("page", 2).get("/api/v1/models").then()
                .body("total", equalTo(3)).body("items.name", contains(ns + "/llama-math"));
        given().queryParam("query", "100%_").get("/api/v1/models").then().body("total", equalTo(0));
        given().queryParam("tag", "nocolon").get("/api/v1/models").then().statusCode(400)
                .body("errors[0].field", equalTo("tag"));
        given().queryParam("page", 0).get("/api/v1/models").then().statusCode(400);

        String url = "/api/v1/models/" + ns + "/llama-math";
        given().contentType("application/merge-patch+json").body("{\"description\": \"Math v2\", \"tags\": {\"task\": null, \"owner\": \"ana\"}}")
                .patch(url).then().statusCode(200).body("description", equalTo("Math v2"))
                .body("tags", not(hasKey("task"))).body("tags.owner", equalTo("ana")).body("tags.base", equalTo("llama"));
        given().contentType(ContentType.JSON).body("{\"name\": \"x/y\"}").patch(url).then().statusCode(400)
                .body("errors[0].field", equalTo("name"));
        given().get(url).then().body("description", equalTo("Math v2"));

        given().delete(url).then().statusCode(204);
        given().get(url).then().statusCode(404).contentType("application/problem+json")
                .body("detail", equalTo("No model " + ns + "/llama-math"));
    }

    @Test
    void openApiHealthAndMetricsAreServed() {
        given().get("/q/openapi").then().statusCode(200).body(containsString("/api/v1/resolve"));
        given().get("/q/swagger-ui/").then().statusCode(200);
        given().get("/q/health").then().statusCode(200).body("status", equalTo("UP"));
        given().get("/api/v1/models").then().statusCode(200);
        given().get("/q/metrics").then().statusCode(200).body(containsString("http_server_requests_seconds_count"));
    }
}
