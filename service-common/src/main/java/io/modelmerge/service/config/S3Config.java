package io.modelmerge.service.config;

import io.modelmerge.storage.blob.S3Settings;
import io.smallrye.config.WithDefault;
import java.net.URI;
import java.util.Optional;

/**
 * The S3-compatible server {@code s3://} URIs live on, as both services configure it ({@code <prefix>.s3.*};
 * their application.properties default it to the standard AWS variables).
 */
public interface S3Config {
    Optional<URI> endpoint();

    @WithDefault("us-east-1")
    String region();

    /** Path-style addressing; by default on when an endpoint is set (MinIO, S3Proxy). */
    Optional<Boolean> pathStyle();

    Optional<String> accessKeyId();

    Optional<String> secretAccessKey();

    /**
     * Whether credentials may come from the EC2 instance metadata service (when no keys are set); off by
     * default, so a service that is not on EC2 never sends requests to 169.254.169.254.
     */
    @WithDefault("false")
    boolean instanceMetadata();

    default S3Settings settings() {
        return new S3Settings(endpoint(), region(), pathStyle().orElse(endpoint().isPresent()), accessKeyId(),
                secretAccessKey(), S3Settings.DEFAULT_PART_SIZE, S3Settings.DEFAULT_UPLOAD_PARALLELISM,
                instanceMetadata());
    }
}
