package io.modelmerge.mergeservice.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.modelmerge.mergeservice.MergeServiceConfig;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;

/** The registry's REST API, as the merge service uses it: resolve inputs, register results, move aliases. */
@ApplicationScoped
public class RegistryClient {
    public static final String USER = "merge-service";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final URI base;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    public RegistryClient(MergeServiceConfig config) {
        String url = config.registryUrl().toString();
        this.base = URI.create((url.endsWith("/") ? url : url + "/") + "api/v1/");
    }

    /** A version as resolve returns it. */
    public record Resolved(String ref, String storageUri) {
    }

    /** The registry answered with an error: its status and problem detail. */
    public static final class RegistryError extends IOException {
        private final int status;

        RegistryError(int status, String detail) {
            super(detail);
            this.status = status;
        }

        public int status() {
            return status;
        }
    }

    public Resolved resolve(String ref) throws IOException {
        JsonNode v = call("GET", "resolve?ref=" + URLEncoder.encode(ref, StandardCharsets.UTF_8), null);
        return new Resolved(v.get("ref").asText(), v.get("storage_uri").asText());
    }

    /** Creates {@code model} unless it exists. */
    public void ensureModel(String model, String description) throws IOException {
        try {
            call("POST", "models", Map.of("name", model, "description", description));
        } catch (RegistryError e) {
            if (e.status() != 409) {
                throw e;
            }
        }
    }

    /** Registers a version of {@code model}; returns its ref (the existing one for content registered before). */
    public String register(String model, Map<String, Object> body) throws IOException {
        return call("POST", "models/" + model + "/versions", body).get("ref").asText();
    }

    public void moveAlias(String model, String alias, int version) throws IOException {
        call("PUT", "models/" + model + "/aliases/" + alias, Map.of("version", version));
    }

    private JsonNode call(String method, String path, Object body) throws IOException {
        HttpRequest.Builder request = HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofMinutes(10))
                .header("X-Modelmerge-User", USER).header("Accept", "application/json");
        if (body == null) {
            request.method(method, HttpRequest.BodyPublishers.noBody());
        } else {
            request.header("Content-Type", "application/json")
                    .method(method, HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)));
        }
        HttpResponse<byte[]> response;
        try {
            response = http.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted calling the registry", e);
        }
        JsonNode json = response.body().length == 0 ? JSON.nullNode() : JSON.readTree(response.body());
        if (response.statusCode() >= 400) {
            String detail = json.hasNonNull("detail") ? json.get("detail").asText() : "HTTP " + response.statusCode();
            throw new RegistryError(response.statusCode(), "registry: " + detail);
        }
        return json;
    }
}
