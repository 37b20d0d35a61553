package io.modelmerge.storage.testing;

import io.modelmerge.storage.blob.S3Settings;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import org.gaul.s3proxy.auth.AuthenticationType;
import org.gaul.s3proxy.BlobStores;
import org.gaul.s3proxy.S3Proxy;
import org.gaul.s3proxy.blobstore.BlobStore;

/**
 * A real S3 server for tests: S3Proxy in this JVM, on a free 127.0.0.1 port, storing objects in a directory,
 * with SigV4 authentication.
 */
public final class S3ProxyServer implements AutoCloseable {
    public static final String ACCESS_KEY = "modelmerge-test";
    public static final String SECRET_KEY = "modelmerge-test-secret";

    private final S3Proxy proxy;
    private final BlobStore backend;
    private final URI endpoint;

    private S3ProxyServer(S3Proxy proxy, BlobStore backend, URI endpoint) {
        this.proxy = proxy;
        this.backend = backend;
        this.endpoint = endpoint;
    }

    /** Starts a server whose buckets live under {@code directory}; creates {@code buckets}. */
    public static S3ProxyServer start(Path directory, String... buckets) throws Exception {
        Files.createDirectories(directory);
        Properties properties = new Properties();
        properties.setProperty("jclouds.filesystem.basedir", directory.toString());
        BlobStore backend = BlobStores.create("filesystem", properties);
        for (String bucket : buckets) {
            backend.createContainer(bucket);
        }
        S3Proxy proxy = S3Proxy.builder()
                .blobStore(backend)
                .endpoint(URI.create("http://127.0.0.1:0"))
                .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS_KEY, SECRET_KEY)
                .stopTimeout(0)
                .build();
        proxy.start();
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!proxy.getState().equals("STARTED")) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("S3Proxy did not start: " + proxy.getState());
            }
            Thread.sleep(10);
        }
        return new S3ProxyServer(proxy, backend, URI.create("http://127.0.0.1:" + proxy.getPort()));
    }

    public URI endpoint() {
        return endpoint;
    }

    public S3Settings settings() {
        return S3Settings.compatible(endpoint, ACCESS_KEY, SECRET_KEY);
    }

    @Override
    public void close() throws Exception {
        proxy.stop();
        backend.close();
    }
}
