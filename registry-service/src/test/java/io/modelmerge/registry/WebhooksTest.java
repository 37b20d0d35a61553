package io.modelmerge.registry;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;

/**
 * Webhooks end to end, against a receiver on 127.0.0.1 that checks every delivery's signature itself (HMAC-SHA256
 * over timestamp and body, computed here with the JDK, compared in constant time) and answers 401 to a wrong one:
 * version.ready, alias.moved and job.finished arrive signed; a receiver that is down gets them once it is back;
 * a replay delivers the same event again; another namespace's events do not come.
 */
@QuarkusTest
class WebhooksTest extends RegistryTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One delivery as the receiver took it, its signature already checked. */
    private record Received(String event, String deliveryId, JsonNode body, String raw) {
    }

    private final List<Received> received = new CopyOnWriteArrayList<>();
    private HttpServer receiver;

    @Test
    void eventsArriveSignedRetriedUntilTheReceiverIsBackAndReplayed() throws Exception {
        int port;
        try (ServerSocket probe = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = probe.getLocalPort();
        }
        String namespace = unique("hooks");
        JsonNode hook = JSON.readTree(given().contentType(ContentType.JSON).body(Map.of("namespace", namespace,
                "url", "http://127.0.0.1:" + port + "/hook", "events",
                List.of("version.ready", "alias.moved", "job.finished")))
                .post("/api/v1/webhooks").then().statusCode(201).extract().asString());
        String secret = hook.get("secret").asText();
        String id = hook.get("id").asText();
        assertTrue(given().get("/api/v1/webhooks?namespace=" + namespace).then().statusCode(200).extract()
                .path("secret").toString().contains("null"), "a listed webhook shows no secret");
        startReceiver(port, secret);

        String model = namespace + "/m";
        Path v1 = localDir("hook-v1");
        TinyCheckpoints.write(v1, 1);
        register(model, Map.of("storage_uri", v1.toUri().toString(), "create_model", Map.of())).then().statusCode(201);
        Received ready = await(r -> r.event().equals("version.ready"));
        assertEquals(model + "@1", ready.body().get("ref").asText());
        given().contentType(ContentType.JSON).body(Map.of("version", 1))
                .put("/api/v1/models/" + model + "/aliases/nightly").then().statusCode(200);
        Received moved = await(r -> r.event().equals("alias.moved"));
        assertEquals("nightly", moved.body().get("alias").asText());
        assertTrue(moved.body().get("from_version").isNull());
        assertEquals(1, moved.body().get("to_version").asInt());
        // another namespace's event is not this webhook's
        String elsewhere = unique("elsewhere") + "/m";
        register(elsewhere, Map.of("storage_uri", v1.toUri().toString(), "create_model", Map.of())).then().statusCode(201);

        // The receiver goes down: the events wait, retried, and arrive when it is back.
        receiver.stop(0);
        Path v2 = localDir("hook-v2");
        TinyCheckpoints.write(v2, 2);
        register(model, Map.of("storage_uri", v2.toUri().toString())).then().statusCode(201);
        given().contentType(ContentType.JSON).body(Map.of("model", model, "job", Map.of("id", "job-1",
                "state", "SUCCEEDED", "result_version", model + "@2"))).post("/api/v1/events/job-finished")
                .then().statusCode(202);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (failedAttempts(id) < 2) {
            assertTrue(System.nanoTime() < deadline, "no failed attempt recorded while the receiver was down");
            Thread.sleep(100);
        }
        startReceiver(port, secret);
        Received second = await(r -> r.event().equals("version.ready") && r.body().get("version").asInt() == 2);
        assertEquals(model + "@2", second.body().get("ref").asText());
        Received finished = await(r -> r.event().equals("job.finished"));
        assertEquals("SUCCEEDED", finished.body().get("job").get("state").asText());

        // A replay delivers the same event again, as a new delivery.
        given().post("/api/v1/webhooks/" + id + "/deliveries/" + ready.deliveryId() + "/replay").then().statusCode(202);
        Received replayed = await(r -> r.raw().equals(ready.raw()) && !r.deliveryId().equals(ready.deliveryId()));
        assertNotEquals(ready.deliveryId(), replayed.deliveryId());

        assertTrue(received.stream().noneMatch(r -> r.body().get("model").asText().equals(elsewhere)), received.toString());
        JsonNode deliveries = JSON.readTree(given().get("/api/v1/webhooks/" + id + "/deliveries").then().statusCode(200)
                .extract().asString());
        for (JsonNode d : deliveries) {
            assertEquals("DELIVERED", d.get("state").asText(), d.toString());
        }
        receiver.stop(0);
    }

    /** Failed attempts recorded on the webhook's pending deliveries. */
    private int failedAttempts(String id) throws Exception {
        int failed = 0;
        for (JsonNode d : JSON.readTree(given().get("/api/v1/webhooks/" + id + "/deliveries").then().extract().asString())) {
            if (d.get("state").asText().equals("PENDING") && d.get("attempts").asInt() > 0) {
                assertNotNull(d.get("last_error").asText());
                failed++;
            }
        }
        return failed;
    }

    private Received await(Predicate<Received> wanted) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            for (Received r : received) {
                if (wanted.test(r)) {
                    return r;
                }
            }
            Thread.sleep(50);
        }
        throw new AssertionError("not delivered in 60 s; received " + received);
    }

    private void startReceiver(int port, String secret) throws Exception {
        receiver = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
        receiver.createContext("/hook", exchange -> {
            byte[] body = exchange.getRequestBody().readAllBytes();
            String timestamp = exchange.getRequestHeaders().getFirst("X-Modelmerge-Timestamp");
            String signature = exchange.getRequestHeaders().getFirst("X-Modelmerge-Signature");
            boolean valid;
            try {
                Mac mac = Mac.getInstance("HmacSHA256");
                mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
                mac.update((timestamp + ".").getBytes(StandardCharsets.UTF_8));
                byte[] expected = ("sha256=" + HexFormat.of().formatHex(mac.doFinal(body))).getBytes(StandardCharsets.UTF_8);
                valid = signature != null && MessageDigest.isEqual(expected, signature.getBytes(StandardCharsets.UTF_8))
                        && Math.abs(System.currentTimeMillis() / 1000 - Long.parseLong(timestamp)) < 300;
            } catch (Exception e) {
                valid = false;
            }
            if (valid) {
                String raw = new String(body, StandardCharsets.UTF_8);
                received.add(new Received(exchange.getRequestHeaders().getFirst("X-Modelmerge-Event"),
                        exchange.getRequestHeaders().getFirst("X-Modelmerge-Delivery"), JSON.readTree(raw), raw));
            }
            exchange.sendResponseHeaders(valid ? 204 : 401, -1);
            exchange.close();
        });
        receiver.start();
    }
}
