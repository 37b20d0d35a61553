package io.modelmerge.registry.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The registry's REST API ({@code /api/v1}) from a client: the calls the merge service makes (resolve a ref,
 * register a version, move an alias) and plain JSON requests for the rest. Every request carries the client's
 * bearer token, if it has one; an error answer is a {@link RegistryError} with the status and the problem's detail,
 * an unreachable registry an {@link IOException} saying so. Thread-safe; one per registry.
 */
public final class RegistryClient {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final URI api;
    /** Sent as {@code Authorization: Bearer}; null: none. */
    private final String token;
    private final HttpClient http;

    /** A client of the registry at {@code registry} (its base URL) calling with {@code token} (null: none). */
    public RegistryClient(URI registry, String token) {
        this(api(registry), token, HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build());
    }

    private RegistryClient(URI api, String token, HttpClient http) {
        this.api = api;
        this.token = token == null || token.isBlank() ? null : token.strip();
        this.http = http;
    }

    private static URI api(URI registry) {
        String url = registry.toString();
        return URI.create((url.endsWith("/") ? url : url + "/") + "api/v1/");
    }

    /** The same registry, called with {@code other} (sharing this client's connections). */
    public RegistryClient withToken(String other) {
        return new RegistryClient(api, other, http);
    }

    /** Who this client's token is ({@code GET /tokens/self}); a RegistryError 401 when it is not valid. */
    public Identity self() throws IOException {
        JsonNode self = get("tokens/self");
        Set<Scope> scopes = EnumSet.noneOf(Scope.class);
        self.get("scopes").forEach(s -> scopes.add(Scope.parse(s.asText())));
        return new Identity(self.get("id").asText(), self.get("name").asText(), scopes, strings(self.get("namespaces")),
                strings(self.get("aliases")));
    }

    private static List<String> strings(JsonNode array) {
        List<String> items = new ArrayList<>();
        array.forEach(n -> items.add(n.asText()));
        return items;
    }

    /** A version as resolve returns it. */
    public record Resolved(String ref, String storageUri) {
    }

    /**
     * A registered version: its ref, whether this call created it, and the merge job that registered it first
     * (its {@code parameters.job_id}; empty for a version registered otherwise).
     */
    public record Registered(String ref, boolean created, String jobId) {
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

    /**
     * Whether {@code e} from a call here is worth trying again: the registry unreachable or answering with a
     * server-side status (503 while its database is down, 502 when its storage is), or 429.
     */
    public static boolean passing(IOException e) {
        return !(e instanceof RegistryError error) || error.status() >= 500 || error.status() == 429;
    }

    public Resolved resolve(String ref) throws IOException {
        JsonNode v = get("resolve?ref=" + URLEncoder.encode(ref, StandardCharsets.UTF_8));
        return new Resolved(v.get("ref").asText(), v.get("storage_uri").asText());
    }

    /**
     * Registers a version of {@code model}, creating the model with {@code modelDescription} in the same
     * transaction if it does not exist: a model never appears without its first version. The same content
     * registered before returns that version, not created.
     */
    public Registered register(String model, Map<String, Object> body, String modelDescription) throws IOException {
        Map<String, Object> request = new LinkedHashMap<>(body);
        request.put("create_model", Map.of("description", modelDescription));
        Answer answer = call("POST", "models/" + model + "/versions", request);
        return new Registered(answer.body().get("ref").asText(), answer.status() == 201,
                answer.body().path("parameters").path("job_id").asText(""));
    }

    public void moveAlias(String model, String alias, int version) throws IOException {
        send("PUT", "models/" + model + "/aliases/" + alias, Map.of("version", version));
    }

    /** GET of {@code path} under {@code /api/v1/}: the answer's JSON. */
    public JsonNode get(String path) throws IOException {
        return send("GET", path, null);
    }

    /** {@code method} on {@code path} under {@code /api/v1/} with {@code body} as JSON (none if null). */
    public JsonNode send(String method, String path, Object body) throws IOException {
        return call(method, path, body).body();
    }

    private record Answer(int status, JsonNode body) {
    }

    private Answer call(String method, String path, Object body) throws IOException {
        HttpRequest.Builder request = HttpRequest.newBuilder(api.resolve(path)).timeout(Duration.ofMinutes(10))
                .header("Accept", "application/json");
        if (token != null) {
            request.header("Authorization", "Bearer " + token);
        }
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
        } catch (IOException e) {
            String why = e instanceof ConnectException ? "connection refused"
                    : e instanceof HttpTimeoutException ? "timed out"
                    : e.getMessage() != null ? e.getMessage() : "no answer";
            throw new IOException("the registry at " + api + " could not be reached (" + why + ")", e);
        }
        JsonNode json;
        try {
            json = response.body().length == 0 ? JSON.nullNode() : JSON.readTree(response.body());
        } catch (IOException e) {
            json = JSON.nullNode(); // not JSON (a proxy's error page): the status says enough
        }
        if (response.statusCode() >= 400) {
            String detail = json.hasNonNull("detail") ? json.get("detail").asText() : "HTTP " + response.statusCode();
            throw new RegistryError(response.statusCode(), "registry: " + detail);
        }
        return new Answer(response.statusCode(), json);
    }
}
