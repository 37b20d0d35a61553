package io.modelmerge.storage.blob;

import java.net.URI;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * How to reach an S3-compatible server (AWS, MinIO, S3Proxy) and how to upload to it.
 *
 * @param endpoint          the server, when not AWS itself (e.g. {@code http://127.0.0.1:9000})
 * @param region            signing region; any value works for most S3-compatible servers
 * @param pathStyle         {@code host/bucket/key} addressing instead of {@code bucket.host/key}; MinIO and
 *                          S3Proxy need it
 * @param accessKeyId       static credentials; when empty, the system properties, environment, web identity token,
 *                          profile and container credentials are tried, in the AWS SDK's order
 * @param secretAccessKey   secret of {@code accessKeyId}
 * @param partSize          objects larger than this go up as multipart uploads with parts of this size
 * @param uploadParallelism parts uploaded at once; memory held by an upload is about (this + 1) × partSize
 * @param instanceMetadata  whether credentials may also come from the EC2 instance metadata service; off unless
 *                          configured, so a process off EC2 never sends requests to 169.254.169.254
 */
public record S3Settings(Optional<URI> endpoint, String region, boolean pathStyle, Optional<String> accessKeyId,
                         Optional<String> secretAccessKey, long partSize, int uploadParallelism,
                         boolean instanceMetadata) {

    /** S3's minimum part size (except the last part). */
    public static final long MIN_PART_SIZE = 5L << 20;
    public static final long DEFAULT_PART_SIZE = 16L << 20;
    public static final int DEFAULT_UPLOAD_PARALLELISM = 4;

    public S3Settings {
        Objects.requireNonNull(endpoint, "endpoint");
        Objects.requireNonNull(region, "region");
        Objects.requireNonNull(accessKeyId, "accessKeyId");
        Objects.requireNonNull(secretAccessKey, "secretAccessKey");
        if (accessKeyId.isPresent() != secretAccessKey.isPresent()) {
            throw new IllegalArgumentException("S3 access key id and secret access key must be given together");
        }
        if (partSize < MIN_PART_SIZE) {
            throw new IllegalArgumentException("S3 part size " + partSize + " is under S3's minimum of " + MIN_PART_SIZE);
        }
        if (uploadParallelism < 1) {
            throw new IllegalArgumentException("S3 upload parallelism must be at least 1, got " + uploadParallelism);
        }
    }

    /** AWS itself, credentials from the default chain. */
    public static S3Settings defaults() {
        return new S3Settings(Optional.empty(), "us-east-1", false, Optional.empty(), Optional.empty(),
                DEFAULT_PART_SIZE, DEFAULT_UPLOAD_PARALLELISM, false);
    }

    /** An S3-compatible server at {@code endpoint} with static credentials and path-style addressing. */
    public static S3Settings compatible(URI endpoint, String accessKeyId, String secretAccessKey) {
        return new S3Settings(Optional.of(endpoint), "us-east-1", true, Optional.of(accessKeyId),
                Optional.of(secretAccessKey), DEFAULT_PART_SIZE, DEFAULT_UPLOAD_PARALLELISM, false);
    }

    public S3Settings withPartSize(long bytes) {
        return new S3Settings(endpoint, region, pathStyle, accessKeyId, secretAccessKey, bytes, uploadParallelism,
                instanceMetadata);
    }

    /**
     * Settings from the standard AWS variables ({@code AWS_ENDPOINT_URL}, {@code AWS_REGION},
     * {@code AWS_ACCESS_KEY_ID}, {@code AWS_SECRET_ACCESS_KEY}) plus {@code MODELMERGE_S3_PATH_STYLE}
     * (default: true when an endpoint is set, as S3-compatible servers expect) and
     * {@code MODELMERGE_S3_INSTANCE_METADATA} (default false).
     */
    public static S3Settings fromEnvironment(Map<String, String> env) {
        Optional<URI> endpoint = Optional.ofNullable(env.get("AWS_ENDPOINT_URL_S3"))
                .or(() -> Optional.ofNullable(env.get("AWS_ENDPOINT_URL")))
                .filter(s -> !s.isBlank()).map(URI::create);
        String region = Optional.ofNullable(env.get("AWS_REGION"))
                .or(() -> Optional.ofNullable(env.get("AWS_DEFAULT_REGION"))).orElse("us-east-1");
        boolean pathStyle = Optional.ofNullable(env.get("MODELMERGE_S3_PATH_STYLE")).map(Boolean::parseBoolean)
                .orElse(endpoint.isPresent());
        Optional<String> key = Optional.ofNullable(env.get("AWS_ACCESS_KEY_ID")).filter(s -> !s.isBlank());
        Optional<String> secret = Optional.ofNullable(env.get("AWS_SECRET_ACCESS_KEY")).filter(s -> !s.isBlank());
        if (key.isPresent() != secret.isPresent()) {
            key = Optional.empty();
            secret = Optional.empty();
        }
        boolean instanceMetadata = Boolean.parseBoolean(env.getOrDefault("MODELMERGE_S3_INSTANCE_METADATA", "false"));
        return new S3Settings(endpoint, region, pathStyle, key, secret, DEFAULT_PART_SIZE, DEFAULT_UPLOAD_PARALLELISM,
                instanceMetadata);
    }
}
