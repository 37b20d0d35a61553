package io.modelmerge.mergeservice.registry;

import io.modelmerge.mergeservice.MergeServiceConfig;
import io.modelmerge.registry.client.ApiTokens;
import io.modelmerge.registry.client.RegistryClient;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.io.IOException;
import java.io.UncheckedIOException;

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
        try {
            return ApiTokens.readLocal(config.dataDir()).orElse(null);
        } catch (IOException e) {
            throw new UncheckedIOException("could not read the registry token in " + config.dataDir(), e);
        }
    }
}
