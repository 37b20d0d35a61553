package io.modelmerge.storage.blob;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * Opens the store behind a storage location a user typed, by its URI scheme: {@code s3://bucket/prefix/} on the
 * S3 endpoint of its settings, {@code file:///dir/} or a plain path on the local disk under its {@link LocalRoots}
 * policy. One per process (a service, a command): every S3 store it opens shares one client, made on first use
 * and closed with the resolver; a store it hands out is closed by its user as usual.
 */
public final class StorageResolver implements AutoCloseable {
    private final S3Settings s3;
    private final LocalRoots roots;
    private final AtomicReference<S3Client> s3Client;
    private final Map<String, Opener> schemes = Map.of("s3", this::s3, "file", this::file);

    @FunctionalInterface
    private interface Opener {
        Located open(String location) throws IOException;
    }

    public StorageResolver(S3Settings s3, LocalRoots roots) {
        this(s3, roots, new AtomicReference<>());
    }

    private StorageResolver(S3Settings s3, LocalRoots roots, AtomicReference<S3Client> s3Client) {
        this.s3 = s3;
        this.roots = roots;
        this.s3Client = s3Client;
    }

    /** Local paths anywhere: for the command line. */
    public static StorageResolver unconfined(S3Settings s3) {
        return new StorageResolver(s3, LocalRoots.anywhere());
    }

    /** This resolver with another local policy, on the same S3 client (closed by this one, not the other). */
    public StorageResolver withRoots(LocalRoots other) {
        return new StorageResolver(s3, other, s3Client);
    }

    /** This resolver, reading local paths under {@code dir} too (where the process writes its own files). */
    public StorageResolver withRoot(Path dir) {
        return withRoots(roots.with(dir));
    }

        public S3Settings s3Settings() {
        return s3;
    }

    /**
     * The store and key behind {@code location}: a local file becomes its directory's store and its name, a local
     * directory a store rooted there (under configured roots: the root's store, confined to it, and the path's
     * key), an S3 prefix a store rooted there; an S3 location is a file when it ends in {@code .safetensors} or {@code .bin}.
     */
    public Located locate(String location) throws IOException {
        String scheme = location.matches("[a-zA-Z][a-zA-Z0-9+.-]*://.*")
                ? location.substring(0, location.indexOf(':')).toLowerCase()
                : location.startsWith("file:") ? "file" : "";
        if (scheme.isEmpty()) {
            return local(location);
        }
        Opener opener = schemes.get(scheme);
        if (opener == null) {
            throw new UnsupportedLocationException("'" + location
                    + "' is not a storage location: use s3://bucket/prefix/, file:///path/ or a local path");
        }
        return opener.open(location);
    }

    private Located s3(String location) throws IOException {
        try {
            S3Client client = s3Client.updateAndGet(c -> c != null ? c : S3BlobStore.client(s3));
            if (location.endsWith(".safetensors") || location.endsWith(".bin")) {
                int slash = location.lastIndexOf('/');
                return new Located(S3BlobStore.on(client, URI.create(location.substring(0, slash + 1)), s3),
                        location.substring(slash + 1), true);
            }
            return new Located(S3BlobStore.on(client, URI.create(location), s3), "", false);
        } catch (IllegalArgumentException e) {
            throw new UnsupportedLocationException("'" + location + "' is not a valid S3 URI: " + e.getMessage());
        }
    }

    private Located file(String location) throws IOException {
        Path path;
        try {
            path = Path.of(URI.create(location));
        } catch (IllegalArgumentException e) {
            throw new UnsupportedLocationException("'" + location + "' is not a valid file: URI");
        }
        return roots.locate(path, location);
    }

    private Located local(String location) throws IOException {
        Path path;
        try {
            path = Path.of(location);
        } catch (IllegalArgumentException e) { // a path with a NUL
            throw new UnsupportedLocationException("'" + location + "' is not a valid path");
        }
        return roots.locate(path, location);
    }

    /** Closes the shared S3 client, if one was made. */
    @Override
    public void close() {
        S3Client client = s3Client.getAndSet(null);
        if (client != null) {
            client.close();
        }
    }
}
