package io.modelmerge.storage.blob;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.checkpoint.MappedCheckpoint;
import io.modelmerge.storage.safetensors.TensorInfo;
import io.modelmerge.storage.testing.CountingBlobStore;
import io.modelmerge.storage.testing.Fixtures;
import io.modelmerge.storage.testing.PatternInputStream;
import io.modelmerge.storage.testing.S3ProxyServer;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.zip.CRC32C;
import java.util.zip.CheckedInputStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.ChecksumMode;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;

/** The S3 store against S3Proxy, a real S3 server running in this JVM on a free loopback port. */
class S3BlobStoreTest extends BlobStoreContract {
    private static final String BUCKET = "models";

    @TempDir
    static Path serverDir;
    private static S3ProxyServer server;
    private static int prefixCounter;

    private S3BlobStore store;

    @BeforeAll
    static void startServer() throws Exception {
        server = S3ProxyServer.start(serverDir.resolve("s3"), BUCKET);
    }

    @AfterAll
    static void stopServer() throws Exception {
        server.close();
    }

    @BeforeEach
    void open() {
        // Each test works under its own prefix of the shared bucket.
        store = S3BlobStore.open(URI.create("s3://" + BUCKET + "/test-" + (++prefixCounter) + "/"), server.settings());
    }

    @AfterEach
    void close() {
        store.close();
    }

    @Override
    BlobStore store() {
        return store;
    }

    private Path backendFile(String key) {
        return serverDir.resolve("s3").resolve(BUCKET).resolve(store.root().getPath().substring(1) + key);
    }

    @Test
    void threeHundredMegabytesRoundTripThroughMultipartWithAFullObjectCrc32c() throws Exception {
        long size = 300L << 20;
        BlobInfo written = store.write("big/model.safetensors", new PatternInputStream(42, size));
        String expected;
        try (InputStream in = new PatternInputStream(42, size)) {
            expected = Crc32c.of(in);
        }
        assertEquals(size, written.size());
        assertEquals(Optional.of(expected), written.crc32c());

        // The server verified and kept the full-object CRC32C; a fresh client sees it, and multipart parts.
        try (S3Client client = S3Client.builder().endpointOverride(server.endpoint()).forcePathStyle(true)
                .region(software.amazon.awssdk.regions.Region.US_EAST_1)
                .credentialsProvider(() -> software.amazon.awssdk.auth.credentials.AwsBasicCredentials.create(
                        S3ProxyServer.ACCESS_KEY, S3ProxyServer.SECRET_KEY)).build()) {
            HeadObjectResponse head = client.headObject(b -> b.bucket(BUCKET).key(store.root().getPath().substring(1)
                    + "big/model.safetensors").checksumMode(ChecksumMode.ENABLED));
            assertEquals(expected, head.checksumCRC32C());
            int parts = (int) ((size + S3Settings.DEFAULT_PART_SIZE - 1) / S3Settings.DEFAULT_PART_SIZE);
            assertTrue(head.eTag().endsWith("-" + parts + "\""), "a multipart ETag of " + parts + " parts: " + head.eTag());
        }
        assertEquals(Optional.of(expected), store.head("big/model.safetensors").orElseThrow().crc32c());
        CRC32C crc = new CRC32C();
        long read;
        try (InputStream in = new CheckedInputStream(store.read("big/model.safetensors"), crc)) {
            read = in.transferTo(java.io.OutputStream.nullOutputStream());
        }
        assertEquals(size, read);
        assertEquals(expected, Crc32c.encode(crc.getValue()));
    }

    @Test
    void opensCheckpointsReadingOnlyTheirHeaders() throws Exception {
        List<String> names = List.of("gpt2-lora-b", "mnist-tinygrad-full", "bert-lora-query-value");
        for (String name : names) {
            uploadFixture(name);
        }
        CountingBlobStore counting = new CountingBlobStore(store);
        for (String name : names) {
            Checkpoint remote = Checkpoint.open(counting, name + "/");
            Checkpoint local = Checkpoint.open(new LocalBlobStore(Fixtures.real(name)), "");
            assertEquals(local.format(), remote.format());
            assertEquals(local.tensors(), remote.tensors());
            assertEquals(local.metadata(), remote.metadata());
        }
        long fileBytes = names.stream().mapToLong(n -> sizeOf(Fixtures.real(n))).sum();
        // One 64 KiB ranged read per safetensors file plus the small JSON configs: far less than the files.
        assertTrue(counting.bytesRead.get() < 3 * (64 << 10) + 4096, "read " + counting.bytesRead.get() + " bytes");
        assertTrue(counting.bytesRead.get() * 20 < fileBytes, counting.bytesRead.get() + " of " + fileBytes);
    }

    @Test
    void mapsRemoteTensorsThroughTheCacheDownloadingEachFileOnce(@TempDir Path cacheDir) throws Exception {
        uploadFixture("gpt2-lora-c_attn-r8-a");
        CountingBlobStore counting = new CountingBlobStore(store);
        Checkpoint remote = Checkpoint.open(counting, "gpt2-lora-c_attn-r8-a/");
        Checkpoint local = Checkpoint.open(new LocalBlobStore(Fixtures.real("gpt2-lora-c_attn-r8-a")), "");
        BlobCache cache = new BlobCache(cacheDir, 64L << 20);
        long before = counting.bytesRead.get();
        for (int round = 0; round < 2; round++) {
            try (MappedCheckpoint r = remote.map(cache); MappedCheckpoint l = local.map(cache)) {
                for (TensorInfo t : remote.tensors()) {
                    assertEquals(-1, r.tensor(t.name()).data().mismatch(l.tensor(t.name()).data()), t.name());
                }
            }
        }
        long fileSize = Files.size(Fixtures.real("gpt2-lora-c_attn-r8-a").resolve("adapter_model.safetensors"));
        assertEquals(fileSize, counting.bytesRead.get() - before, "downloaded exactly once");
    }

    @Test
    void theCacheStaysWithinItsBudgetAndRefusesCorruptDownloads(@TempDir Path cacheDir) throws Exception {
        byte[] a = new PatternInputStream(1, 600_000).readAllBytes();
        byte[] b = new PatternInputStream(2, 600_000).readAllBytes();
        store.write("c/a.bin", a);
        store.write("c/b.bin", b);
        BlobCache cache = new BlobCache(cacheDir, 1_000_000);
        assertArrayEquals(a, cache.open(store, "c/a.bin", Files::readAllBytes));
        assertArrayEquals(b, cache.open(store, "c/b.bin", Files::readAllBytes));
        try (Stream<Path> files = Files.list(cacheDir)) {
            assertEquals(1, files.count(), "a was evicted to keep the cache under 1 MB");
        }
        // Flip one byte of the stored object behind the server's back: same size, wrong CRC32C.
        try (RandomAccessFile raf = new RandomAccessFile(backendFile("c/a.bin").toFile(), "rw")) {
            raf.seek(1000);
            raf.write(a[1000] ^ 0xFF);
        }
        ChecksumMismatchException e = assertThrows(ChecksumMismatchException.class,
                () -> cache.open(store, "c/a.bin", Files::readAllBytes));
        assertTrue(e.getMessage().contains("c/a.bin"), e.getMessage());
    }

    @Test
    void concurrentReadersOfOneRemoteFileShareOneDownload(@TempDir Path cacheDir) throws Exception {
        byte[] content = new PatternInputStream(9, 2_000_000).readAllBytes();
        store.write("shared/model.safetensors", content);
        CountingBlobStore counting = new CountingBlobStore(store);
        BlobCache cache = new BlobCache(cacheDir, 64L << 20);
        List<java.util.concurrent.Future<byte[]>> results = new java.util.ArrayList<>();
        try (var pool = java.util.concurrent.Executors.newFixedThreadPool(8)) {
            for (int i = 0; i < 8; i++) {
                results.add(pool.submit(() -> cache.open(counting, "shared/model.safetensors", Files::readAllBytes)));
            }
        }
        for (var result : results) {
            assertArrayEquals(content, result.get());
        }
        assertEquals(content.length, counting.bytesRead.get(), "one download for eight readers");
    }

    @Test
    void writeIfAbsentHoldsForMultipartUploadsToo() throws Exception {
        try (S3BlobStore small = S3BlobStore.open(store.root(), server.settings().withPartSize(S3Settings.MIN_PART_SIZE))) {
            long size = 2 * S3Settings.MIN_PART_SIZE + 12345;
            assertTrue(small.writeIfAbsent("mp/once.bin", new PatternInputStream(1, size)).isPresent());
            assertTrue(small.writeIfAbsent("mp/once.bin", new PatternInputStream(2, size)).isEmpty());
            String first;
            try (InputStream in = new PatternInputStream(1, size)) {
                first = Crc32c.of(in);
            }
            try (InputStream in = small.read("mp/once.bin")) {
                assertEquals(first, Crc32c.of(in));
            }
        }
    }

    private void uploadFixture(String name) throws Exception {
        try (Stream<Path> files = Files.list(Fixtures.real(name))) {
            for (Path file : files.toList()) {
                try (InputStream in = Files.newInputStream(file)) {
                    store.write(name + "/" + file.getFileName(), in);
                }
            }
        }
    }

    private static long sizeOf(Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            return files.mapToLong(p -> p.toFile().length()).sum();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void aDirectoryListingStopsAtTheDelimiter() throws Exception {
        store.write("m/config.json", new byte[] {1});
        store.write("m/model.safetensors", new byte[] {2});
        store.write("m/sub/deeper/other.safetensors", new byte[] {3});
        assertEquals(List.of("m/config.json", "m/model.safetensors"),
                store.listDirectory("m/").stream().map(BlobInfo::key).toList());
    }

    /**
     * Without keys the credentials come from the environment, profiles or containers, never from the EC2
     * instance metadata service unless the settings allow it; and what a failure says names no provider chain.
     */
    @Test
    void theInstanceMetadataServiceIsNeverAskedUnlessConfigured() throws Exception {
        java.util.concurrent.atomic.AtomicInteger asked = new java.util.concurrent.atomic.AtomicInteger();
        com.sun.net.httpserver.HttpServer imds = com.sun.net.httpserver.HttpServer.create(
                new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0), 0);
        imds.createContext("/", exchange -> {
            asked.incrementAndGet();
            exchange.sendResponseHeaders(404, -1);
            exchange.close();
        });
        imds.start();
        String property = "aws.ec2MetadataServiceEndpoint";
        System.setProperty(property, "http://127.0.0.1:" + imds.getAddress().getPort());
        try {
            S3Settings keyless = new S3Settings(Optional.of(server.endpoint()), "us-east-1", true, Optional.empty(),
                    Optional.empty(), S3Settings.DEFAULT_PART_SIZE, S3Settings.DEFAULT_UPLOAD_PARALLELISM, false);
            try (S3BlobStore anonymous = S3BlobStore.open(URI.create("s3://" + BUCKET + "/x/"), keyless)) {
                java.io.IOException e = assertThrows(java.io.IOException.class, () -> anonymous.head("model.safetensors"));
                // Keys in the environment of whoever runs the tests would reach the server and be refused by it.
                if (System.getenv("AWS_ACCESS_KEY_ID") == null) {
                    assertEquals("HEAD s3://" + BUCKET + "/x/model.safetensors failed: no S3 credentials are configured"
                            + " (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an AWS profile)", e.getMessage());
                }
                assertFalse(e.getMessage().contains("Provider"), e.getMessage());
            }
            assertEquals(0, asked.get(), "requests to the instance metadata service");
            S3Settings allowed = new S3Settings(keyless.endpoint(), "us-east-1", true, Optional.empty(), Optional.empty(),
                    S3Settings.DEFAULT_PART_SIZE, S3Settings.DEFAULT_UPLOAD_PARALLELISM, true);
            try (S3BlobStore metadata = S3BlobStore.open(URI.create("s3://" + BUCKET + "/x/"), allowed)) {
                assertThrows(java.io.IOException.class, () -> metadata.head("model.safetensors"));
            }
            if (System.getenv("AWS_ACCESS_KEY_ID") == null) {
                assertTrue(asked.get() > 0, "with instance metadata allowed, the service is asked");
            }
        } finally {
            System.clearProperty(property);
            imds.stop(0);
        }
    }

    @Test
    void anUnreachableEndpointIsNamedWithoutTheClientsInternals() throws Exception {
        S3Settings nowhere = S3Settings.compatible(URI.create("http://127.0.0.1:1"), "k", "s");
        try (S3BlobStore unreachable = S3BlobStore.open(URI.create("s3://" + BUCKET + "/x/"), nowhere)) {
            java.io.IOException e = assertThrows(java.io.IOException.class, () -> unreachable.listDirectory(""));
            assertEquals("LIST s3://" + BUCKET + "/x/ failed: the S3 endpoint http://127.0.0.1:1 could not be reached",
                    e.getMessage());
        }
    }
}
