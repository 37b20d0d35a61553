package io.modelmerge.mergeservice;

import io.modelmerge.service.config.S3Config;
import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
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
     * The merge service's own token at the registry (read, write and promote on the namespaces it writes to).
     * Unset: the first admin token the registry wrote to the data directory ({@code admin-token}), where both run
     * on one data directory as in {@code deploy/local}.
     */
    Optional<String> registryToken();

    /**
     * Where results are stored: {@code <output-root>/<ns>/<name>/<job id>/}. By default the data directory's
     * {@code blobs/merged/}, inside the registry's default local root.
     */
    Optional<String> outputRoot();

    /**
     * Where evaluators reach this service to send a score later ({@code <public-url>/evaluations/callback}); by
     * default {@code http://<quarkus.http.host>:<quarkus.http.port>}, right where the service runs on one machine.
     * Set it behind TLS, a load balancer or an ingress.
     */
    Optional<URI> publicUrl();

    /** Jobs one replica runs at once. */
    @WithDefault("1")
    int workers();

    /**
     * Whether a merge whose output has several shards runs as one task per shard, claimed by any replica's
     * workers (the result is byte-identical to a run on one worker).
     */
    @WithDefault("true")
    boolean splitJobs();

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

    /** The largest memory budget a job may ask for; by default the JVM's maximum heap (what a merge holds). */
    Optional<Long> maxMemoryBytes();

    /**
     * Local directories that recipes (and the registry refs they name) may read inputs from; by default the
     * data directory's {@code blobs/}, the registry's default root. Anything else, and any symbolic link leading
     * out of them, is refused at submission.
     */
    Optional<List<Path>> localRoots();

    /** Tries of each registry or storage call that ends a job (registering, moving the alias, uploading). */
    @WithDefault("6")
    int commitTries();

    /** The wait after the first failed try of such a call; doubled after each further one. */
    @WithDefault("PT0.5S")
    Duration commitBackoff();

    /** How long a job waits before its next attempt after one failed on something passing (an outage). */
    @WithDefault("PT10S")
    Duration retryDelay();

    /** Threads of one merge; by default every core. */
    Optional<Integer> threads();

    /**
     * The highest rate, in bytes per second, at which one merge writes its output, so merges share a node's
     * disks and network with other work; 0 for no limit.
     */
    @WithDefault("0")
    long maxBytesPerSecond();

    /** Bytes of S3 inputs kept in the local download cache. */
    @WithDefault("21474836480")
    long cacheBytes();

    /** The S3-compatible server {@code s3://} URIs live on; defaults to the standard AWS variables. */
    S3Config s3();

    default List<Path> allowedLocalRoots() {
        return localRoots().orElseGet(() -> List.of(dataDir().resolve("blobs")));
    }

    default long allowedMaxMemoryBytes() {
        return maxMemoryBytes().orElseGet(() -> Math.max(defaultMemoryBytes(), Runtime.getRuntime().maxMemory()));
    }

    default String resolvedOutputRoot() {
        return outputRoot().orElseGet(() -> dataDir().resolve("blobs").resolve("merged").toUri().toString());
    }
}
