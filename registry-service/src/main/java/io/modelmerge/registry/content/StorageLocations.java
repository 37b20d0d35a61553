package io.modelmerge.registry.content;

import io.modelmerge.registry.RegistryConfig;
import io.modelmerge.registry.api.RegistryException;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.BlobStores.Located;
import io.modelmerge.storage.blob.LocalRoots;
import io.modelmerge.storage.blob.OutsideRootsException;
import io.modelmerge.storage.blob.S3BlobStore;
import io.modelmerge.storage.blob.S3Location;
import io.modelmerge.storage.blob.S3Settings;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Turns the storage URIs of requests ({@code s3://bucket/prefix/}, {@code file:///dir/}) into a store and a key.
 * One S3 client per bucket is kept for the life of the service; local paths must lie under an allowed root, and
 * no symbolic link may lead out of it ({@link LocalRoots}: the store handed back refuses such files too).
 */
@ApplicationScoped
public class StorageLocations {
    private final S3Settings s3;
    private final LocalRoots localRoots;
    private final Map<String, S3BlobStore> buckets = new ConcurrentHashMap<>();

    public StorageLocations(RegistryConfig config) {
        this.s3 = config.s3().settings();
        this.localRoots = LocalRoots.only(config.allowedLocalRoots(), "modelmerge.registry.local-roots");
    }

    /**
     * The store and key behind {@code uri}; {@code file} is true when it names one {@code .safetensors} file
     * rather than a directory. Directory keys end in {@code /} (or are empty for a store's root).
     */
    public Located locate(String field, String uri) {
        if (uri == null || uri.isBlank()) {
            throw RegistryException.badRequest(field, "a storage URI (s3://bucket/prefix/ or file:///dir/) is required");
        }
        if (uri.startsWith("s3://")) {
            S3Location location;
            try {
                location = S3Location.parse(URI.create(uri));
            } catch (IllegalArgumentException e) {
                throw RegistryException.badRequest(field, "'" + uri + "' is not a valid S3 URI (s3://bucket/prefix/)");
            }
            S3BlobStore store = buckets.computeIfAbsent(location.bucket(),
                    b -> S3BlobStore.open(URI.create("s3://" + b + "/"), s3));
            boolean file = uri.endsWith(".safetensors");
            String key = location.prefix();
            return new Located(store, file ? stripSlash(key) : key, file);
        }
        if (uri.startsWith("file:")) {
            Path path;
            try {
                path = Path.of(URI.create(uri));
            } catch (IllegalArgumentException e) {
                throw RegistryException.badRequest(field, "'" + uri + "' is not a valid file URI");
            }
            try {
                return localRoots.locate(path, uri);
            } catch (OutsideRootsException e) {
                throw RegistryException.badRequest(field, e.getMessage());
            } catch (IOException e) {
                throw new UncheckedIOException("Reading " + uri + " failed: " + e.getMessage(), e);
            }
        }
        throw RegistryException.badRequest(field, "'" + uri + "': use s3://bucket/prefix/ or file:///dir/");
    }

    /** The URI of {@code key} in {@code store}, in the form requests use. */
    public static String uriOf(BlobStore store, String key) {
        return store.root() + key;
    }

    private static String stripSlash(String key) {
        return key.endsWith("/") ? key.substring(0, key.length() - 1) : key;
    }

    @PreDestroy
    void close() throws IOException {
        for (S3BlobStore store : buckets.values()) {
            store.close();
        }
    }
}
