package io.modelmerge.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/** The registry's REST API from mergectl: JSON in and out, problem details as one-line errors. */
final class RegistryHttp {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final URI base;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    RegistryHttp(URI registry) {
        this.base = registry.resolve("api/v1/");
    }

    JsonNode get(String path) throws IOException {
        return send("GET", path, null);
    }

    JsonNode send(String method, String path, Object body) throws IOException {
        HttpRequest.Builder request = HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofMinutes(10))
                .header("X-Modelmerge-User", System.getProperty("user.name", "mergectl"));
        request.method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                : HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)));
        if (body != null) {
            request.header("Content-Type", "application/json");
        }
        HttpResponse<byte[]> response;
        try {
            response = http.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (ConnectException e) {
            throw new IOException("registry at " + base + " is not reachable (start it, or pass --registry)", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        JsonNode json = response.body().length == 0 ? JSON.nullNode() : JSON.readTree(response.body());
        if (response.statusCode() >= 400) {
            throw new IOException("registry: HTTP " + response.statusCode() + ": "
                    + (json.hasNonNull("detail") ? json.get("detail").asText() : "no detail"));
        }
        return json;
    }
}
