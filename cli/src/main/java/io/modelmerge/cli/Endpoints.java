package io.modelmerge.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * Where the services are: from flags, else the environment ({@code MODELMERGE_REGISTRY_URL},
 * {@code MODELMERGE_MERGE_SERVICE}), else the file the local start wrote ({@code $MODELMERGE_DATA_DIR/endpoints.json},
 * by default {@code ~/.modelmerge/endpoints.json}).
 *
 * @param registry     the registry's base URL
 * @param mergeService the merge service's gRPC address, {@code host:port}
 */
record Endpoints(URI registry, String mergeService) {
    static final String FILE_NAME = "endpoints.json";

    /** The local start's data directory: $MODELMERGE_DATA_DIR, by default ~/.modelmerge. */
    static Path dataDir(Map<String, String> env) {
        return Path.of(env.getOrDefault("MODELMERGE_DATA_DIR", System.getProperty("user.home") + "/.modelmerge"));
    }

    static Endpoints resolve(Map<String, String> env, Optional<String> registryFlag, Optional<String> mergeFlag)
            throws IOException {
        Path file = dataDir(env).resolve(FILE_NAME);
        JsonNode written = Files.isRegularFile(file) ? new ObjectMapper().readTree(file.toFile()) : null;
        String registry = registryFlag.or(() -> Optional.ofNullable(env.get("MODELMERGE_REGISTRY_URL")))
                .or(() -> Optional.ofNullable(written).map(w -> w.path("registry").asText(null)))
                .orElse("http://127.0.0.1:8180");
        String merge = mergeFlag.or(() -> Optional.ofNullable(env.get("MODELMERGE_MERGE_SERVICE")))
                .or(() -> Optional.ofNullable(written).map(w -> w.path("merge_service").asText(null)))
                .orElse("127.0.0.1:8190");
        return new Endpoints(URI.create(registry.endsWith("/") ? registry : registry + "/"), merge);
    }
}
