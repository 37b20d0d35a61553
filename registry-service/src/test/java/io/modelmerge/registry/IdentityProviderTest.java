package io.modelmerge.registry;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.equalTo;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.Signature;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Bearer JWTs of an identity provider, minted here (RS256, signed with the key pair the registry trusts the public
 * half of): a valid one acts with the grants its claims give and is recorded by its user name; one signed with
 * another key, expired, from another issuer, or without grants is refused.
 */
@QuarkusTest
class IdentityProviderTest extends RegistryTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void aProvidersJwtActsWithTheGrantsItsClaimsGive() throws Exception {
        String team = unique("sso");
        long now = System.currentTimeMillis() / 1000;
        Map<String, Object> claims = new LinkedHashMap<>();
        claims.put("iss", RegistryTestResources.ISSUER);
        claims.put("sub", "u-4711");
        claims.put("preferred_username", "alice");
        claims.put("scope", "openid profile read write");
        claims.put("modelmerge_namespaces", List.of(team + "/*"));
        claims.put("iat", now);
        claims.put("exp", now + 300);
        String alice = jwt(claims, RegistryTestResources.IDENTITY_PROVIDER.getPrivate());

        Path files = localDir("sso");
        TinyCheckpoints.write(files, 7);
        given().header("Authorization", "Bearer " + alice).contentType(ContentType.JSON)
                .body(Map.of("storage_uri", files.toUri().toString(), "create_model", Map.of()))
                .post("/api/v1/models/" + team + "/m/versions").then().statusCode(201)
                .body("created_by", equalTo("alice"));
        given().header("Authorization", "Bearer " + alice).get("/api/v1/tokens/self").then().statusCode(200)
                .body("name", equalTo("alice")).body("scopes", equalTo(List.of("read", "write")));
        // its grants are its claims: another namespace is refused, and so is a scope it lacks
        given().header("Authorization", "Bearer " + alice).contentType(ContentType.JSON).body(Map.of("name", "x/m"))
                .post("/api/v1/models").then().statusCode(403);
        given().header("Authorization", "Bearer " + alice).contentType(ContentType.JSON).body(Map.of("version", 1))
                .put("/api/v1/models/" + team + "/m/aliases/prod").then().statusCode(403);

        KeyPairGenerator generator = KeyPairGenerator.getInstance("RSA");
        generator.initialize(2048);
        KeyPair stranger = generator.generateKeyPair();
        refused(jwt(claims, stranger.getPrivate()));
        Map<String, Object> expired = new LinkedHashMap<>(claims);
        expired.put("exp", now - 600);
        expired.put("iat", now - 1200);
        refused(jwt(expired, RegistryTestResources.IDENTITY_PROVIDER.getPrivate()));
        Map<String, Object> elsewhere = new LinkedHashMap<>(claims);
        elsewhere.put("iss", "https://other-idp.example.test");
        refused(jwt(elsewhere, RegistryTestResources.IDENTITY_PROVIDER.getPrivate()));
        Map<String, Object> ungranted = new LinkedHashMap<>(claims);
        ungranted.remove("modelmerge_namespaces");
        given().header("Authorization", "Bearer " + jwt(ungranted, RegistryTestResources.IDENTITY_PROVIDER.getPrivate()))
                .get("/api/v1/models/" + team + "/m").then().statusCode(403);
    }

    private static void refused(String jwt) {
        given().header("Authorization", "Bearer " + jwt).get("/api/v1/models?query=").then().statusCode(401)
                .body("detail", containsString("JWT"));
    }

    /** A compact RS256 JWS of {@code claims}. */
    private static String jwt(Map<String, Object> claims, PrivateKey key) throws Exception {
        Base64.Encoder base64 = Base64.getUrlEncoder().withoutPadding();
        String header = base64.encodeToString("{\"alg\":\"RS256\",\"typ\":\"JWT\"}".getBytes(StandardCharsets.UTF_8));
        String payload = base64.encodeToString(JSON.writeValueAsBytes(claims));
        Signature rsa = Signature.getInstance("SHA256withRSA");
        rsa.initSign(key);
        rsa.update((header + "." + payload).getBytes(StandardCharsets.US_ASCII));
        return header + "." + payload + "." + base64.encodeToString(rsa.sign());
    }
}
