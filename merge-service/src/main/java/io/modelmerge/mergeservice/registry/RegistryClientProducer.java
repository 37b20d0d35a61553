package io.modelmerge.mergeservice.registry;

import io.modelmerge.mergeservice.MergeServiceConfig;
import io.modelmerge.registry.client.RegistryClient;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The one registry client of the merge service, pointed at {@code modelmerge.merge.registry-url} with the service's
 * token ({@code modelmerge.merge.registry-token}, else the data directory's {@code admin-token}).
 */
@Singleton
final class RegistryClientProducer {
    @Produces
    @Singleton
    RegistryClient registryClient(MergeServiceConfig config) {
        return new RegistryClient(config.registryUrl(), config.registryToken().orElseGet(() -> localToken(config)));
    }

    /** The token the registry wrote to the shared data directory, or null when there is none. */
    private static String localToken(MergeServiceConfig config) {
        Path file = config.dataDir().resolve("admin-token");
        try {
            return Files.isReadable(file) ? Files.readString(file).strip() : null;
        } catch (IOException e) {
            throw new UncheckedIOException("could not read the registry token " + file, e);
        }
    }
}
