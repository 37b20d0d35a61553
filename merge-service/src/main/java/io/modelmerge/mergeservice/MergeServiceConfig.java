package io.modelmerge.mergeservice;

import io.modelmerge.storage.blob.S3Settings;
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

    S3 s3();

    /** The S3-compatible server {@code s3://} URIs live on; defaults to the standard AWS variables. */
    interface S3 {
        Optional<URI> endpoint();

        @WithDefault("us-east-1")
        String region();

        Optional<Boolean> pathStyle();

        Optional<String> accessKeyId();

        Optional<String> secretAccessKey();
    }

    default String resolvedOutputRoot() {
        return outputRoot().orElseGet(() -> dataDir().resolve("blobs").resolve("merged").toUri().toString());
    }

    default S3Settings s3Settings() {
        S3 s = s3();
        return new S3Settings(s.endpoint(), s.region(), s.pathStyle().orElse(s.endpoint().isPresent()),
                s.accessKeyId(), s.secretAccessKey(), S3Settings.DEFAULT_PART_SIZE, S3Settings.DEFAULT_UPLOAD_PARALLELISM);
    }
}
