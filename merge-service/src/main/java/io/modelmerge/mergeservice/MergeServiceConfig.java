package io.modelmerge.mergeservice;

import io.modelmerge.service.config.S3Config;
import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/** The merge service's settings ({@code modelmerge.merge.*}; environment {@code MODELMERGE_MERGE_*}). */
@ConfigMapping(prefix = "modelmerge.merge")
public interface MergeServiceConfig {

    /** Working space: the embedded PostgreSQL, local merge outputs before upload, the S3 download cache. */
    Path dataDir();

    /** The registry's base URL, e.g. {@code http://127.0.0.1:8180}. */
    @WithDefault("http://127.0.0.1:8180")
    URI registryUrl();

    /**
     * Where results are stored: {@code <output-root>/<ns>/<name>/<job id>/}. By default the data directory's
     * {@code blobs/merged/}, inside the registry's default local root.
     */
    Optional<String> outputRoot();

    /** Jobs one replica runs at once. */
    @WithDefault("1")
    int workers();

    /** How long a claimed job stays with a worker that stops renewing (a killed process): then it is retried. */
    @WithDefault("PT30S")
    Duration lease();

    /** How often idle workers look for queued jobs. */
    @WithDefault("PT1S")
    Duration pollInterval();

    /** Attempts before a job whose workers keep dying is FAILED. */
    @WithDefault("3")
    int maxAttempts();

    /** Memory budget of a merge when the job gives none. */
    @WithDefault("2147483648")
    long defaultMemoryBytes();

    /** Threads of one merge; by default every core. */
    Optional<Integer> threads();

    /** Bytes of S3 inputs kept in the local download cache. */
    @WithDefault("21474836480")
    long cacheBytes();

    /** The S3-compatible server {@code s3://} URIs live on; defaults to the standard AWS variables. */
    S3Config s3();

    default String resolvedOutputRoot() {
        return outputRoot().orElseGet(() -> dataDir().resolve("blobs").resolve("merged").toUri().toString());
    }
}
