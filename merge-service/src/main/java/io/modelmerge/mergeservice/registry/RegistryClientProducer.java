package io.modelmerge.mergeservice.registry;

import io.modelmerge.mergeservice.MergeServiceConfig;
import io.modelmerge.registry.client.RegistryClient;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;

/** The one registry client of the merge service, pointed at {@code modelmerge.merge.registry-url}. */
@Singleton
final class RegistryClientProducer {
    /** Who the merge service says it is to the registry. */
    static final String USER = "merge-service";

    @Produces
    @Singleton
    RegistryClient registryClient(MergeServiceConfig config) {
        return new RegistryClient(config.registryUrl(), USER);
    }
}
