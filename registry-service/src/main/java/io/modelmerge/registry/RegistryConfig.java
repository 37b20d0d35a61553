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

    /** Who may call: bearer tokens ({@code modelmerge.registry.auth.*}). */
    Auth auth();

    interface Auth {
        /** Whether a GET without a token may read everything. Off by default; a write always needs a token. */
        @WithDefault("false")
        boolean anonymousRead();

        /**
         * The first admin token of a fresh installation, given (e.g. from a Kubernetes secret; the form
         * {@code mm_<id>_<secret>} that {@code mergectl token mint} prints). Without it, a fresh installation makes
         * one, prints it once and writes it to the data directory's {@code admin-token} (mode 600).
         */
        Optional<String> bootstrapToken();
    }

    /** Webhook deliveries ({@code modelmerge.registry.webhooks.*}). */
    Webhooks webhooks();

    interface Webhooks {
        /** The wait before the first retry; it doubles each time, up to {@link #maxBackoff()}. */
        @WithDefault("PT1S")
        Duration retryBase();

        @WithDefault("PT5M")
        Duration maxBackoff();

        /** Attempts before a delivery is FAILED for good (it can still be replayed). */
        @WithDefault("12")
        int maxAttempts();

        /** How often due deliveries are looked for. */
        @WithDefault("PT0.5S")
        Duration pollInterval();

        /** How long a receiver has to answer. */
        @WithDefault("PT10S")
        Duration timeout();
    }

    default List<Path> allowedLocalRoots() {
        return localRoots().orElseGet(() -> List.of(dataDir().resolve("blobs")));
    }
}
