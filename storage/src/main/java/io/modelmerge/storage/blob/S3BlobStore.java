package io.modelmerge.storage.blob;

import java.io.ByteArrayInputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.zip.CRC32C;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProviderChain;
import software.amazon.awssdk.auth.credentials.ContainerCredentialsProvider;
import software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider;
import software.amazon.awssdk.auth.credentials.InstanceProfileCredentialsProvider;
import software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider;
import software.amazon.awssdk.auth.credentials.SystemPropertyCredentialsProvider;
import software.amazon.awssdk.auth.credentials.WebIdentityTokenFileCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.apache5.Apache5HttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.S3Configuration;
import software.amazon.awssdk.services.s3.presigner.S3Presigner;
import software.amazon.awssdk.services.s3.model.ChecksumAlgorithm;
import software.amazon.awssdk.services.s3.model.ChecksumMode;
import software.amazon.awssdk.services.s3.model.ChecksumType;
import software.amazon.awssdk.services.s3.model.CompleteMultipartUploadResponse;
import software.amazon.awssdk.services.s3.model.CompletedPart;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;
import software.amazon.awssdk.services.s3.model.PutObjectResponse;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;
import software.amazon.awssdk.services.s3.model.UploadPartResponse;

/**
 * A bucket prefix on an S3-compatible server. Uploads send a CRC32C the server verifies: single objects with
 * the checksum header, larger ones as multipart uploads whose parts each carry their own and whose completion
 * carries the full-object CRC32C ({@code FULL_OBJECT}), so every object ends up with one whole-object
 * checksum that readers can check.
 */
public final class S3BlobStore implements BlobStore {
    private static final int PRECONDITION_FAILED = 412;
    private static final int NOT_FOUND = 404;

    private final S3Client client;
    private final boolean ownsClient;
    private final String bucket;
    private final String prefix;
    private final S3Settings settings;

    private S3BlobStore(S3Client client, boolean ownsClient, String bucket, String prefix, S3Settings settings) {
        this.client = client;
        this.ownsClient = ownsClient;
        this.bucket = bucket;
        this.prefix = prefix;
        this.settings = settings;
    }

    /** Opens {@code s3://bucket/prefix/} with a client of its own, closed with the store. */
    public static S3BlobStore open(URI uri, S3Settings settings) {
        S3Location location = S3Location.parse(uri);
        return new S3BlobStore(client(settings), true, location.bucket(), location.prefix(), settings);
    }

    /** Opens {@code s3://bucket/prefix/} on a client shared with other stores, which closing this one leaves open. */
    static S3BlobStore on(S3Client shared, URI uri, S3Settings settings) {
        S3Location location = S3Location.parse(uri);
        return new S3BlobStore(shared, false, location.bucket(), location.prefix(), settings);
    }

    static S3Client client(S3Settings settings) {
        S3ClientBuilder builder = S3Client.builder()
                .region(Region.of(settings.region()))
                .credentialsProvider(credentials(settings))
                .forcePathStyle(settings.pathStyle())
                // We compute CRC32C ourselves and send it as a header; the SDK's own default (a CRC32 trailer
                // in aws-chunked encoding) is not understood by every S3-compatible server.
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
                .httpClientBuilder(Apache5HttpClient.builder().maxConnections(4 * settings.uploadParallelism() + 8));
        settings.endpoint().ifPresent(builder::endpointOverride);
        return builder.build();
    }

    /**
     * Static keys when given; otherwise the AWS SDK's default chain without the instance metadata service, unless
     * the settings allow it (the SDK's own default would reach 169.254.169.254 from any machine).
     */
    private static AwsCredentialsProvider credentials(S3Settings settings) {
        if (settings.accessKeyId().isPresent()) {
            return StaticCredentialsProvider.create(
                    AwsBasicCredentials.create(settings.accessKeyId().get(), settings.secretAccessKey().orElseThrow()));
        }
        List<AwsCredentialsProvider> chain = new ArrayList<>(List.of(SystemPropertyCredentialsProvider.create(),
                EnvironmentVariableCredentialsProvider.create(), WebIdentityTokenFileCredentialsProvider.create(),
                ProfileCredentialsProvider.create(), ContainerCredentialsProvider.builder().build()));
        if (settings.instanceMetadata()) {
            chain.add(InstanceProfileCredentialsProvider.create());
        }
        return AwsCredentialsProviderChain.builder().credentialsProviders(chain).reuseLastProviderEnabled(true).build();
    }

    @Override
    public URI downloadUrl(String key, Duration validFor) {
        S3Presigner.Builder builder = S3Presigner.builder()
                .region(Region.of(settings.region()))
                .credentialsProvider(credentials(settings))
                .serviceConfiguration(S3Configuration.builder().pathStyleAccessEnabled(settings.pathStyle()).build());
        settings.endpoint().ifPresent(builder::endpointOverride);
        try (S3Presigner presigner = builder.build()) {
            return URI.create(presigner.presignGetObject(p -> p.signatureDuration(validFor)
                    .getObjectRequest(g -> g.bucket(bucket).key(objectKey(key)))).url().toString());
        } catch (SdkClientException e) {
            throw new java.io.UncheckedIOException(clientFailure("presign", key, e));
        }
    }

    @Override
    public URI root() {
        return URI.create("s3://" + bucket + "/" + prefix);
    }

    private String objectKey(String key) {
        return prefix + key;
    }

    @Override
    public String describe(String key) {
        return "s3://" + bucket + "/" + objectKey(key);
    }

    @Override
    public Optional<BlobInfo> head(String key) throws IOException {
        try {
            HeadObjectResponse head = client.headObject(b -> b.bucket(bucket).key(objectKey(key))
                    .checksumMode(ChecksumMode.ENABLED));
            return Optional.of(new BlobInfo(key, head.contentLength(), Optional.ofNullable(head.checksumCRC32C())));
        } catch (S3Exception e) {
            if (e.statusCode() == NOT_FOUND) {
                return Optional.empty();
            }
            throw failure("HEAD", key, e);
        } catch (SdkClientException e) {
            throw clientFailure("HEAD", key, e);
        }
    }

    @Override
    public InputStream read(String key, long offset, long length) throws IOException {
        if (length == 0) {
            return InputStream.nullInputStream();
        }
        String range = length < 0 ? (offset == 0 ? null : "bytes=" + offset + "-")
                : "bytes=" + offset + "-" + (offset + length - 1);
        try {
            return client.getObject(b -> b.bucket(bucket).key(objectKey(key)).range(range));
        } catch (S3Exception e) {
            if (e.statusCode() == NOT_FOUND) {
                throw new FileNotFoundException(describe(key) + ": no such object");
            }
            throw failure("GET", key, e);
        } catch (SdkClientException e) {
            throw clientFailure("GET", key, e);
        }
    }

    @Override
    public BlobInfo write(String key, InputStream content) throws IOException {
        return upload(key, content, false).orElseThrow();
    }

    @Override
    public Optional<BlobInfo> writeIfAbsent(String key, InputStream content) throws IOException {
        if (exists(key)) {
            return Optional.empty();
        }
        return upload(key, content, true);
    }

    private Optional<BlobInfo> upload(String key, InputStream content, boolean ifAbsent) throws IOException {
        int partSize = Math.toIntExact(settings.partSize());
        byte[] first = content.readNBytes(partSize);
        if (first.length < partSize) {
            return putSingle(key, first, ifAbsent);
        }
        return putMultipart(key, first, content, ifAbsent);
    }

    private Optional<BlobInfo> putSingle(String key, byte[] bytes, boolean ifAbsent) throws IOException {
        String crc = Crc32c.of(bytes, 0, bytes.length);
        try {
            PutObjectResponse response = client.putObject(b -> {
                b.bucket(bucket).key(objectKey(key)).checksumCRC32C(crc);
                if (ifAbsent) {
                    b.ifNoneMatch("*");
                }
            }, RequestBody.fromBytes(bytes));
            verifyEcho(key, crc, response.checksumCRC32C());
            return Optional.of(new BlobInfo(key, bytes.length, Optional.of(crc)));
        } catch (S3Exception e) {
            if (ifAbsent && e.statusCode() == PRECONDITION_FAILED) {
                return Optional.empty();
            }
            throw failure("PUT", key, e);
        } catch (SdkClientException e) {
            throw clientFailure("PUT", key, e);
        }
    }

    private Optional<BlobInfo> putMultipart(String key, byte[] first, InputStream rest, boolean ifAbsent)
            throws IOException {
        String uploadId;
        try {
            uploadId = client.createMultipartUpload(b -> b.bucket(bucket).key(objectKey(key))
                    .checksumAlgorithm(ChecksumAlgorithm.CRC32_C).checksumType(ChecksumType.FULL_OBJECT)).uploadId();
        } catch (S3Exception e) {
            throw failure("CreateMultipartUpload", key, e);
        } catch (SdkClientException e) {
            throw clientFailure("CreateMultipartUpload", key, e);
        }
        boolean completed = false;
        try (ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor()) {
            Semaphore inFlight = new Semaphore(settings.uploadParallelism());
            List<Future<CompletedPart>> parts = new ArrayList<>();
            CRC32C whole = new CRC32C();
            long size = 0;
            byte[] part = first;
            int partNumber = 1;
            while (part.length > 0) {
                whole.update(part);
                size += part.length;
                inFlight.acquire();
                parts.add(executor.submit(uploadPart(key, uploadId, partNumber++, part, inFlight)));
                part = rest.readNBytes(Math.toIntExact(settings.partSize()));
            }
            List<CompletedPart> done = new ArrayList<>(parts.size());
            for (Future<CompletedPart> future : parts) {
                done.add(future.get());
            }
            String crc = Crc32c.encode(whole.getValue());
            CompleteMultipartUploadResponse response = client.completeMultipartUpload(b -> {
                b.bucket(bucket).key(objectKey(key)).uploadId(uploadId)
                        .checksumCRC32C(crc).checksumType(ChecksumType.FULL_OBJECT)
                        .multipartUpload(m -> m.parts(done));
                if (ifAbsent) {
                    b.ifNoneMatch("*");
                }
            });
            completed = true;
            verifyEcho(key, crc, response.checksumCRC32C());
            return Optional.of(new BlobInfo(key, size, Optional.of(crc)));
        } catch (S3Exception e) {
            if (ifAbsent && e.statusCode() == PRECONDITION_FAILED) {
                return Optional.empty();
            }
            throw failure("multipart upload", key, e);
        } catch (SdkClientException e) {
            throw clientFailure("multipart upload", key, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(describe(key) + ": upload interrupted", e);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            throw cause instanceof S3Exception s3 ? failure("UploadPart", key, s3)
                    : cause instanceof SdkClientException client ? clientFailure("UploadPart", key, client)
                    : new IOException(describe(key) + ": part upload failed: " + cause, cause);
        } finally {
            if (!completed) {
                abort(key, uploadId);
            }
        }
    }

    private java.util.concurrent.Callable<CompletedPart> uploadPart(String key, String uploadId, int number, byte[] bytes,
                                                                     Semaphore inFlight) {
        return () -> {
            try {
                String crc = Crc32c.of(bytes, 0, bytes.length);
                UploadPartResponse response = client.uploadPart(b -> b.bucket(bucket).key(objectKey(key))
                        .uploadId(uploadId).partNumber(number).checksumCRC32C(crc),
                        RequestBody.fromInputStream(new ByteArrayInputStream(bytes), bytes.length));
                verifyEcho(key, crc, response.checksumCRC32C());
                return CompletedPart.builder().partNumber(number).eTag(response.eTag()).checksumCRC32C(crc).build();
            } finally {
                inFlight.release();
            }
        };
    }

    private void abort(String key, String uploadId) {
        try {
            client.abortMultipartUpload(b -> b.bucket(bucket).key(objectKey(key)).uploadId(uploadId));
        } catch (RuntimeException ignored) {
            // The upload already failed; the server expires abandoned uploads on its own.
        }
    }

    private void verifyEcho(String key, String sent, String echoed) throws ChecksumMismatchException {
        if (echoed != null && !echoed.equals(sent)) {
            throw new ChecksumMismatchException(describe(key) + ": server stored CRC32C " + echoed + ", we sent " + sent);
        }
    }

    @Override
    public List<BlobInfo> list(String keyPrefix) throws IOException {
        List<BlobInfo> found = new ArrayList<>();
        try {
            for (S3Object object : client.listObjectsV2Paginator(b -> b.bucket(bucket).prefix(objectKey(keyPrefix)))
                    .contents()) {
                found.add(new BlobInfo(object.key().substring(prefix.length()), object.size(), Optional.empty()));
            }
        } catch (S3Exception e) {
            throw failure("LIST", keyPrefix, e);
        } catch (SdkClientException e) {
            throw clientFailure("LIST", keyPrefix, e);
        }
        return found;
    }

    /** The objects directly under {@code dir}: one listing with a {@code /} delimiter, not the subtree. */
    @Override
    public List<BlobInfo> listDirectory(String dir) throws IOException {
        List<BlobInfo> found = new ArrayList<>();
        try {
            for (S3Object object : client.listObjectsV2Paginator(b -> b.bucket(bucket).prefix(objectKey(dir))
                    .delimiter("/")).contents()) {
                found.add(new BlobInfo(object.key().substring(prefix.length()), object.size(), Optional.empty()));
            }
        } catch (S3Exception e) {
            throw failure("LIST", dir, e);
        } catch (SdkClientException e) {
            throw clientFailure("LIST", dir, e);
        }
        return found;
    }

    @Override
    public void delete(String key) throws IOException {
        try {
            client.deleteObject(b -> b.bucket(bucket).key(objectKey(key)));
        } catch (S3Exception e) {
            if (e.statusCode() != NOT_FOUND) {
                throw failure("DELETE", key, e);
            }
        } catch (SdkClientException e) {
            throw clientFailure("DELETE", key, e);
        }
    }

    /**
     * A request that did not reach S3 or got no answer: no connection, or no credentials. The SDK's own message
     * (which lists the whole credential chain) stays in the cause for the log, not in what a caller is told.
     */
    private IOException clientFailure(String operation, String key, SdkClientException e) {
        String why = e.getMessage() != null && e.getMessage().startsWith("Unable to load credentials")
                ? "no S3 credentials are configured (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an AWS profile)"
                : e.getCause() instanceof java.net.UnknownHostException || e.getCause() instanceof java.net.ConnectException
                || e.getCause() instanceof java.net.SocketTimeoutException
                || e.getMessage() != null && e.getMessage().startsWith("Unable to execute HTTP request")
                ? "the S3 endpoint " + settings.endpoint().map(URI::toString).orElse("(AWS)") + " could not be reached"
                : "the S3 client failed before an answer came";
        return new IOException(operation + " " + describe(key) + " failed: " + why, e);
    }

    private IOException failure(String operation, String key, S3Exception e) {
        return new IOException(operation + " " + describe(key) + " failed: HTTP " + e.statusCode() + " "
                + (e.awsErrorDetails() == null ? e.getMessage() : e.awsErrorDetails().errorCode() + " "
                + e.awsErrorDetails().errorMessage()), e);
    }

    @Override
    public void close() {
        if (ownsClient) {
            client.close();
        }
    }
}
