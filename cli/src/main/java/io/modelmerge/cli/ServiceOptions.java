package io.modelmerge.cli;

import io.modelmerge.registry.client.ApiTokens;
import java.io.IOException;
import java.util.Map;
import java.util.Optional;
import picocli.CommandLine.Option;

/** The options every command that talks to the services has. */
final class ServiceOptions {
    @Option(names = "--registry", paramLabel = "URL", description = "Registry base URL (default: from the environment "
            + "or the local start's endpoints.json, else http://127.0.0.1:8180).")
    String registry;

    @Option(names = "--merge-service", paramLabel = "HOST:PORT", description = "Merge service gRPC address; "
            + "https://HOST:PORT for TLS (default: from the environment or endpoints.json, else 127.0.0.1:8190).")
    String mergeService;

    @Option(names = "--token", paramLabel = "TOKEN", description = "API token (default: MODELMERGE_TOKEN, else the local"
            + " start's first admin token, $MODELMERGE_DATA_DIR/admin-token). Prefer the variable: a flag shows in ps.")
    String token;

    /** The token to call with: the flag, else MODELMERGE_TOKEN, else the local data directory's; null: none. */
    String token(Map<String, String> env) throws IOException {
        if (token != null && !token.isBlank()) {
            return token.strip();
        }
        String variable = env.get("MODELMERGE_TOKEN");
        if (variable != null && !variable.isBlank()) {
            return variable.strip();
        }
        return ApiTokens.readLocal(Endpoints.dataDir(env)).orElse(null);
    }

    Endpoints endpoints(Map<String, String> env) throws IOException {
        return Endpoints.resolve(env, Optional.ofNullable(registry), Optional.ofNullable(mergeService));
    }
}
