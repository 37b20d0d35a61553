package io.modelmerge.registry.content;

import io.modelmerge.registry.RegistryConfig;
import io.modelmerge.registry.model.RegistryException;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.LocalRoots;
import io.modelmerge.storage.blob.Located;
import io.modelmerge.storage.blob.OutsideRootsException;
import io.modelmerge.storage.blob.StorageResolver;
import io.modelmerge.storage.blob.UnsupportedLocationException;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * Turns the storage URIs of requests ({@code s3://bucket/prefix/}, {@code file:///dir/}) into a store and a key,
 * through the one storage resolver of the service: one S3 client for its life; local paths only under an allowed
 * root, with no symbolic link leading out of it ({@link LocalRoots}: the store handed back refuses such files too).
 */
@ApplicationScoped
public class StorageLocations {
    private final StorageResolver storage;

    public StorageLocations(RegistryConfig config) {
        this.storage = new StorageResolver(config.s3().settings(),
                LocalRoots.only(config.allowedLocalRoots(), "modelmerge.registry.local-roots"));
    }

    /**
     * The store and key behind {@code uri}; {@code file} is true when it names one {@code .safetensors} file
     * rather than a directory. Directory keys end in {@code /} (or are empty for a store's root).
     */
    public Located locate(String field, String uri) {
        if (uri == null || uri.isBlank()) {
            throw RegistryException.badRequest(field, "a storage URI (s3://bucket/prefix/ or file:///dir/) is required");
        }
        if (!uri.startsWith("s3://") && !uri.startsWith("file:")) {
            throw RegistryException.badRequest(field, "'" + uri + "': use s3://bucket/prefix/ or file:///dir/");
        }
        try {
            return storage.locate(uri);
        } catch (UnsupportedLocationException | OutsideRootsException e) {
            throw RegistryException.badRequest(field, e.getMessage());
        } catch (IOException e) {
            throw new UncheckedIOException("Reading " + uri + " failed: " + e.getMessage(), e);
        }
    }

    /** The URI of {@code key} in {@code store}, in the form requests use. */
    public static String uriOf(BlobStore store, String key) {
        return store.root() + key;
    }

    @PreDestroy
    void close() {
        storage.close();
    }
}
