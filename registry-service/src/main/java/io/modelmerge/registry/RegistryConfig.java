package io.modelmerge.registry;

import io.modelmerge.service.config.S3Config;
import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/** The registry's settings ({@code modelmerge.registry.*}; environment {@code MODELMERGE_REGISTRY_*}). */
@ConfigMapping(prefix = "modelmerge.registry")
public interface RegistryConfig {

    /** Where the embedded defaults keep their data: the PostgreSQL cluster and the local blob store. */
    Path dataDir();

    /**
     * Local directories that {@code file:} storage URIs may point into; by default the data directory's
     * {@code blobs/}. Anything else is refused, so a request cannot make the registry read arbitrary files.
     */
    Optional<List<Path>> localRoots();

    /** How long a download URL handed out by {@code GET .../files} stays valid. */
    @WithDefault("PT1H")
    Duration downloadUrlTtl();

    /** Files checksummed at once while registering a version. */
    @WithDefault("4")
    int digestThreads();

    /** The S3-compatible server {@code s3://} URIs live on; defaults to the standard AWS variables. */
    S3Config s3();

    default List<Path> allowedLocalRoots() {
        return localRoots().orElseGet(() -> List.of(dataDir().resolve("blobs")));
    }
}
