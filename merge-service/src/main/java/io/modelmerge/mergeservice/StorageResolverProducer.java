package io.modelmerge.mergeservice;

import io.modelmerge.storage.blob.LocalRoots;
import io.modelmerge.storage.blob.StorageResolver;
import jakarta.enterprise.inject.Disposes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;

/**
 * The merge service's one storage resolver: jobs' inputs only under {@code modelmerge.merge.local-roots}, S3 on
 * the configured endpoint through one client for the life of the service.
 */
@Singleton
final class StorageResolverProducer {

    @Produces
    @Singleton
    StorageResolver storage(MergeServiceConfig config) {
        return new StorageResolver(config.s3().settings(),
                LocalRoots.only(config.allowedLocalRoots(), "modelmerge.merge.local-roots"));
    }

    void close(@Disposes StorageResolver storage) {
        storage.close();
    }
}
