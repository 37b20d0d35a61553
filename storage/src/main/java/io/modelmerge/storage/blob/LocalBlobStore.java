package io.modelmerge.storage.blob;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.LinkOption;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import java.util.zip.CRC32C;
import java.util.zip.CheckedOutputStream;

/**
 * A directory on the local filesystem as a blob store (the embedded default). Writes go to a temporary file
 * beside the target and are moved into place, so a reader never sees half an object. A confined store (what a
 * service opens for the paths requests name) refuses to read any file whose real path, symbolic links followed,
 * leaves its boundary.
 */
public final class LocalBlobStore implements BlobStore {
    private static final String TEMP_SUFFIX = ".blobtmp";
    private final Path root;
    /** The real path reads must stay under, or null for a store that follows links anywhere. */
    private final Path boundary;
    private final String setting;

    public LocalBlobStore(Path root) {
        this(root, null, "");
    }

    private LocalBlobStore(Path root, Path boundary, String setting) {
        this.root = root.toAbsolutePath().normalize();
        this.boundary = boundary;
        this.setting = setting;
    }

    /**
     * A store rooted at {@code root} that reads nothing whose real path leaves {@code realBoundary};
     * {@code setting} names the configuration the boundary comes from, for error messages.
     */
    public static LocalBlobStore confined(Path root, Path realBoundary, String setting) {
        return new LocalBlobStore(root, realBoundary, setting);
    }

    @Override
    public URI root() {
        String uri = root.toUri().toString();
        return URI.create(uri.endsWith("/") ? uri : uri + "/");
    }

    @Override
    public String describe(String key) {
        return key.isEmpty() ? root.toString() : root.resolve(key).toString();
    }

    /** Maps a key to its file, refusing keys that would leave the root. */
    public Path path(String key) {
        Path path = root.resolve(key).normalize();
        if (!path.startsWith(root) || key.isEmpty()) {
            throw new IllegalArgumentException("Key '" + key + "' is not inside " + root);
        }
        return path;
    }

    @Override
    public URI downloadUrl(String key, Duration validFor) {
        return path(key).toUri();
    }

    /**
     * The file to read for {@code key}: in a confined store its real path, refused when a symbolic link leads
     * out of the boundary; otherwise (and for a missing file) the key's path.
     */
    private Path readable(String key) throws IOException {
        Path path = key.isEmpty() ? root : path(key);
        if (boundary == null || !Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            return path;
        }
        Path real;
        try {
            real = path.toRealPath();
        } catch (NoSuchFileException dangling) {
            return path; // a link to nothing: opening it says "no such file"
        }
        if (!real.startsWith(boundary)) {
            throw new OutsideRootsException(describe(key) + " is a symbolic link leading out of the local directories"
                    + " this service may read (" + setting + ")");
        }
        return real;
    }

    @Override
    public Optional<BlobInfo> head(String key) throws IOException {
        Path path = readable(key);
        if (!Files.isRegularFile(path)) {
            return Optional.empty();
        }
        return Optional.of(new BlobInfo(key, Files.size(path), Optional.empty()));
    }

    @Override
    public InputStream read(String key, long offset, long length) throws IOException {
        Path path = readable(key);
        FileChannel channel;
        try {
            // A confined store opens the resolved real path and no link: one swapped in since is not followed.
            channel = boundary == null ? FileChannel.open(path, StandardOpenOption.READ)
                    : FileChannel.open(path, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException e) {
            throw new FileNotFoundException(describe(key) + ": no such file");
        }
        channel.position(offset);
        InputStream in = Channels.newInputStream(channel);
        if (length < 0) {
            return in;
        }
        return new BoundedInputStream(in, length);
    }

    @Override
    public BlobInfo write(String key, InputStream content) throws IOException {
        Path path = path(key);
        Written temp = writeTemp(path, content);
        Files.move(temp.file(), path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        return temp.info(key);
    }

    @Override
    public Optional<BlobInfo> writeIfAbsent(String key, InputStream content) throws IOException {
        Path path = path(key);
        if (Files.exists(path)) {
            return Optional.empty();
        }
        Written temp = writeTemp(path, content);
        try {
            // A hard link is created atomically and fails if the name is taken: create-if-absent.
            Files.createLink(path, temp.file());
            return Optional.of(temp.info(key));
        } catch (FileAlreadyExistsException e) {
            return Optional.empty();
        } finally {
            Files.deleteIfExists(temp.file());
        }
    }

    /** A fully written, flushed temporary file and the size and CRC32C of what went into it. */
    private record Written(Path file, long size, String crc32c) {
        BlobInfo info(String key) {
            return new BlobInfo(key, size, Optional.of(crc32c));
        }
    }

    private static Written writeTemp(Path path, InputStream content) throws IOException {
        Files.createDirectories(path.getParent());
        Path temp = Files.createTempFile(path.getParent(), "." + path.getFileName(), TEMP_SUFFIX);
        CRC32C crc = new CRC32C();
        long size;
        try (OutputStream out = new CheckedOutputStream(Files.newOutputStream(temp), crc)) {
            size = content.transferTo(out);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(temp);
            throw e;
        }
        try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.WRITE)) {
            channel.force(true);
        }
        return new Written(temp, size, Crc32c.encode(crc.getValue()));
    }

    @Override
    public List<BlobInfo> list(String prefix) throws IOException {
        List<BlobInfo> found = new ArrayList<>();
        // Walk only the directory the prefix lies in, not the whole root.
        Path start = root.resolve(prefix.substring(0, prefix.lastIndexOf('/') + 1)).normalize();
        if (!start.startsWith(root) || !Files.isDirectory(start)) {
            return found;
        }
        try (Stream<Path> files = Files.walk(start)) {
            for (Path path : (Iterable<Path>) files.filter(Files::isRegularFile).sorted()::iterator) {
                String key = root.relativize(path).toString().replace('\\', '/');
                if (key.startsWith(prefix) && !key.endsWith(TEMP_SUFFIX)) {
                    found.add(new BlobInfo(key, Files.size(path), Optional.empty()));
                }
            }
        }
        found.sort(Comparator.comparing(BlobInfo::key));
        return found;
    }

    /** The regular files directly in {@code dir}, by name, without walking its subdirectories. */
    @Override
    public List<BlobInfo> listDirectory(String dir) throws IOException {
        List<BlobInfo> found = new ArrayList<>();
        Path start = dir.isEmpty() ? root : root.resolve(dir).normalize();
        if (!start.startsWith(root) || !Files.isDirectory(start)) {
            return found;
        }
        readable(root.relativize(start).toString().replace('\\', '/'));
        try (Stream<Path> entries = Files.list(start)) {
            for (Path path : (Iterable<Path>) entries.sorted()::iterator) {
                String key = root.relativize(path).toString().replace('\\', '/');
                if (Files.isRegularFile(path) && !key.endsWith(TEMP_SUFFIX)) {
                    found.add(new BlobInfo(key, Files.size(path), Optional.empty()));
                }
            }
        }
        return found;
    }

    @Override
    public void delete(String key) throws IOException {
        Files.deleteIfExists(path(key));
    }

    /**
     * Deletes the temporary files of writes a crash interrupted (no listing shows them); returns how many. Only
     * safe when no write into this store is in progress.
     */
    public int deleteAbandonedWrites() throws IOException {
        if (!Files.isDirectory(root)) {
            return 0;
        }
        List<Path> abandoned;
        try (Stream<Path> files = Files.walk(root)) {
            abandoned = files.filter(p -> p.getFileName().toString().endsWith(TEMP_SUFFIX)).toList();
        }
        for (Path p : abandoned) {
            Files.deleteIfExists(p);
        }
        return abandoned.size();
    }

    @Override
    public Optional<Path> localFile(String key) {
        try {
            Path path = readable(key);
            return Files.isRegularFile(path) ? Optional.of(path) : Optional.empty();
        } catch (IOException refused) {
            return Optional.empty(); // reading it through read() says why
        }
    }
}
