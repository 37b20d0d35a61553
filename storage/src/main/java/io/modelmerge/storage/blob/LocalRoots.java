package io.modelmerge.storage.blob;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * Which local directories a process may read when a request names a path: anywhere (the command line, run by
 * the user on their own files), or only under configured roots (the services, whose requests come from the
 * network). Under roots a path must lie inside one lexically and in fact: a symbolic link on the way, or the
 * file itself, must not lead out of the root; the store handed back keeps checking every key it reads.
 */
public final class LocalRoots {
    private final Optional<List<Path>> roots;
    private final String setting;

    private LocalRoots(Optional<List<Path>> roots, String setting) {
        this.roots = roots;
        this.setting = setting;
    }

    /** Any local path may be read. */
    public static LocalRoots anywhere() {
        return new LocalRoots(Optional.empty(), "");
    }

    /** Only paths under {@code roots}; {@code setting} names where they are configured, for error messages. */
    public static LocalRoots only(List<Path> roots, String setting) {
        return new LocalRoots(Optional.of(roots.stream().map(p -> p.toAbsolutePath().normalize()).toList()), setting);
    }

    /** These roots and {@code root} besides (anywhere stays anywhere): a directory the process writes itself. */
    public LocalRoots with(Path root) {
        if (roots.isEmpty()) {
            return this;
        }
        List<Path> more = new java.util.ArrayList<>(roots.get());
        more.add(root);
        return only(more, setting);
    }

    public boolean restricted() {
        return roots.isPresent();
    }

    /** The roots paths must lie under; empty when any path may be read. */
    public List<Path> roots() {
        return roots.orElse(List.of());
    }

    /**
     * The store and key behind local {@code path} ({@code location} is how the request spelled it, for errors).
     * Anywhere: a store rooted at the directory (the file's directory for a file). Under roots: a store rooted
     * at the root that holds it and confined to it, and the path's key in it ({@code /}-terminated for a
     * directory, {@code ""} for the root itself).
     */
    public Located locate(Path path, String location) throws IOException {
        Path absolute = path.toAbsolutePath().normalize();
        if (roots.isEmpty()) {
            if (Files.isRegularFile(absolute)) {
                return new Located(new LocalBlobStore(absolute.getParent()), absolute.getFileName().toString(), true);
            }
            return new Located(new LocalBlobStore(absolute), "", false);
        }
        Path root = roots.get().stream().filter(absolute::startsWith).findFirst().orElseThrow(() ->
                new OutsideRootsException("'" + location + "' is outside the local directories this service may read"
                        + " (" + setting + ")"));
        Path realRoot = realRoot(root, location);
        Path existing = absolute;
        while (!Files.exists(existing, LinkOption.NOFOLLOW_LINKS) && existing.startsWith(root)) {
            existing = existing.getParent();
        }
        if (!existing.toRealPath().startsWith(realRoot)) {
            throw leadsOut(location);
        }
        String key = root.relativize(absolute).toString().replace('\\', '/');
        boolean file = Files.isRegularFile(absolute);
        return new Located(LocalBlobStore.confined(root, realRoot, setting), file || key.isEmpty() ? key
                : key + "/", file);
    }

    private OutsideRootsException leadsOut(String location) {
        return new OutsideRootsException("'" + location + "' leads out of the local directories this service may read"
                + " through a symbolic link (" + setting + ")");
    }

    private Path realRoot(Path root, String location) throws IOException {
        try {
            return root.toRealPath();
        } catch (IOException e) {
            throw new OutsideRootsException("'" + location + "': the local root " + root + " does not exist ("
                    + setting + ")");
        }
    }
}
