package io.modelmerge.storage.blob;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.stream.Stream;
import java.util.zip.CRC32C;
import java.util.zip.CheckedInputStream;

/**
 * A bounded local directory of downloaded objects, so remote tensor data can be memory-mapped. Each object is
 * downloaded once (concurrent requests for it wait for the one download), checked against its size and
 * CRC32C, and moved into place atomically. When the cache grows past its budget the least recently used
 * files are deleted; a reader is handed a file only inside {@link #open}, while eviction waits, and a mapped
 * file stays readable after its name is deleted.
 */
public final class BlobCache {
    /** Opens what the cache hands over, e.g. maps it; runs while the file cannot be evicted. */
    @FunctionalInterface
    public interface Opener<T> {
        T open(Path file) throws IOException;
    }

    private static final String PARTIAL = ".download";

    private final Path directory;
    private final long maxBytes;
    private final ReentrantReadWriteLock evictionLock = new ReentrantReadWriteLock();
    private final ConcurrentHashMap<String, Object> downloadLocks = new ConcurrentHashMap<>();

    public BlobCache(Path directory, long maxBytes) throws IOException {
        if (maxBytes <= 0) {
            throw new IllegalArgumentException("Cache budget must be positive, got " + maxBytes);
        }
        this.directory = Files.createDirectories(directory);
        this.maxBytes = maxBytes;
    }

    /**
     * Hands {@code opener} a local file with the content of {@code key}: the store's own file where it keeps
     * one, else a cached download.
     */
    public <T> T open(BlobStore store, String key, Opener<T> opener) throws IOException {
        var local = store.localFile(key);
        if (local.isPresent()) {
            return opener.open(local.get());
        }
        BlobInfo info = store.head(key).orElseThrow(() ->
                new NoSuchFileException(store.describe(key) + ": no such object"));
        String id = cacheId(store, info);
        Path file = directory.resolve(id);
        T opened;
        boolean downloaded = false;
        evictionLock.readLock().lock();
        try {
            synchronized (downloadLocks.computeIfAbsent(id, k -> new Object())) {
                if (!Files.isRegularFile(file) || Files.size(file) != info.size()) {
                    download(store, info, file);
                    downloaded = true;
                }
                Files.setLastModifiedTime(file, FileTime.fromMillis(System.currentTimeMillis()));
            }
            opened = opener.open(file);
        } finally {
            evictionLock.readLock().unlock();
        }
        if (downloaded) {
            evict(file); // the cache only grows by downloads
        }
        return opened;
    }

    private static String cacheId(BlobStore store, BlobInfo info) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            String identity = store.root().resolve(info.key()) + "\n" + info.size() + "\n" + info.crc32c().orElse("");
            String name = info.fileName().replaceAll("[^A-Za-z0-9._-]", "_");
            return HexFormat.of().formatHex(sha.digest(identity.getBytes(StandardCharsets.UTF_8)), 0, 16) + "-" + name;
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private void download(BlobStore store, BlobInfo info, Path file) throws IOException {
        Path partial = Files.createTempFile(directory, file.getFileName().toString(), PARTIAL);
        try {
            CRC32C crc = new CRC32C();
            long size;
            try (InputStream in = new CheckedInputStream(store.read(info.key()), crc);
                 OutputStream out = Files.newOutputStream(partial)) {
                size = in.transferTo(out);
            }
            String where = store.describe(info.key());
            if (size != info.size()) {
                throw new IOException(where + ": downloaded " + size + " bytes, expected " + info.size());
            }
            String actual = Crc32c.encode(crc.getValue());
            if (info.crc32c().isPresent() && !info.crc32c().get().equals(actual)) {
                throw new ChecksumMismatchException(where + ": downloaded CRC32C " + actual + " but the store has "
                        + info.crc32c().get());
            }
            Files.move(partial, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(partial);
        }
    }

    private void evict(Path keep) throws IOException {
        evictionLock.writeLock().lock();
        try {
            List<Path> files;
            try (Stream<Path> listing = Files.list(directory)) {
                files = new ArrayList<>(listing.filter(p -> !p.getFileName().toString().endsWith(PARTIAL)).toList());
            }
            long total = 0;
            for (Path p : files) {
                total += sizeOrZero(p);
            }
            if (total <= maxBytes) {
                return;
            }
            files.sort(Comparator.comparing(BlobCache::modifiedOrEpoch));
            for (Path p : files) {
                if (total <= maxBytes) {
                    break;
                }
                if (!p.equals(keep)) {
                    total -= sizeOrZero(p);
                    Files.deleteIfExists(p);
                }
            }
        } finally {
            evictionLock.writeLock().unlock();
        }
    }

    private static long sizeOrZero(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            return 0;
        }
    }

    private static FileTime modifiedOrEpoch(Path p) {
        try {
            return Files.getLastModifiedTime(p);
        } catch (IOException e) {
            return FileTime.fromMillis(0);
        }
    }
}
