package io.modelmerge.cli;

import java.io.IOException;
import java.util.Map;
import java.util.Optional;
import picocli.CommandLine.Option;

/** The options every command that talks to the services has. */
final class ServiceOptions {
    @Option(names = "--registry", paramLabel = "URL", description = "Registry base URL (default: from the environment "
            + "or the local start's endpoints.json, else http://127.0.0.1:8180).")
    String registry;

    @Option(names = "--merge-service", paramLabel = "HOST:PORT", description = "Merge service gRPC address (default: "
            + "from the environment or endpoints.json, else 127.0.0.1:8190).")
    String mergeService;

    Endpoints endpoints(Map<String, String> env) throws IOException {
        return Endpoints.resolve(env, Optional.ofNullable(registry), Optional.ofNullable(mergeService));
    }
}
