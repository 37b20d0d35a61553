package io.modelmerge.registry;

import static io.restassured.RestAssured.given;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** With anonymous reading on, a GET goes without a token; a write still needs one. */
@QuarkusTest
@TestProfile(AnonymousReadTest.AnonymousRead.class)
class AnonymousReadTest extends RegistryTest {
    public static final class AnonymousRead implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("modelmerge.registry.auth.anonymous-read", "true");
        }
    }

    @Test
    void readsNeedNoTokenWritesDo() {
        String model = unique("open") + "/m";
        createModel(model).then().statusCode(201);
        // an empty Authorization header: the tests' filter adds the admin token only where there is none
        given().header("Authorization", "").get("/api/v1/models/" + model).then().statusCode(200);
        given().header("Authorization", "").get("/api/v1/models?query=open").then().statusCode(200);
        given().header("Authorization", "").contentType(ContentType.JSON).body(Map.of("name", model + "-2"))
                .post("/api/v1/models").then().statusCode(401);
        given().header("Authorization", "").contentType(ContentType.JSON).body(Map.of("description", "x"))
                .patch("/api/v1/models/" + model).then().statusCode(401);
        given().get("/api/v1/models/" + model + "-2").then().statusCode(404);
    }
}
