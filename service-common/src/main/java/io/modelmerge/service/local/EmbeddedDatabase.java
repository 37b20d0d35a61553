package io.modelmerge.service.local;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * The embedded default database: a real PostgreSQL, from the binaries Maven packaged, whose cluster lives in a
 * directory that is kept across restarts. It listens on 127.0.0.1 only, on a free port, and is durable: a commit
 * is acknowledged only once its WAL is on disk (the library's test defaults turn fsync and synchronous commit
 * off, which lost acknowledged writes on a crash). The caller stops it; no shutdown hook of the library's races
 * the service's own shutdown.
 */
public final class EmbeddedDatabase {
    private EmbeddedDatabase() {
    }

    /** Starts (creating on first use) the cluster in {@code directory}. */
    public static EmbeddedPostgres start(Path directory) throws IOException {
        Files.createDirectories(directory);
        stopOrphan(directory);
        return EmbeddedPostgres.builder()
                .setDataDirectory(directory)
                .setCleanDataDirectory(false)
                .setRegisterShutdownHook(false)
                .setPort(freePort())
                .setServerConfig("listen_addresses", "127.0.0.1")
                // The library starts postgres with -F (fsync off) and synchronous_commit=off; these come after it.
                .setServerConfig("fsync", "on")
                .setServerConfig("synchronous_commit", "on")
                .setServerConfig("full_page_writes", "on")
                .setPGStartupWait(Duration.ofSeconds(60))
                .start();
    }

    /** Whether the PostgreSQL serving {@code directory} is running (its postmaster.pid names a live process). */
    public static boolean running(Path directory) {
        return postmaster(directory).map(ProcessHandle::isAlive).orElse(false);
    }

    /**
     * A process killed with -9 leaves its PostgreSQL running on the cluster, which would refuse a second server;
     * stop that one first (SIGTERM: a smart shutdown, it has no clients left).
     */
    private static void stopOrphan(Path directory) throws IOException {
        Optional<ProcessHandle> orphan = postmaster(directory);
        if (orphan.isPresent()) {
            orphan.get().destroy();
            try {
                orphan.get().onExit().get(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                throw new IOException("PostgreSQL (pid " + orphan.get().pid() + ") left running on " + directory
                        + " did not stop: " + e.getMessage(), e);
            }
        }
    }

    /** The live postmaster serving {@code directory}, from its postmaster.pid. */
    static Optional<ProcessHandle> postmaster(Path directory) {
        try {
            List<String> lines = Files.readAllLines(directory.resolve("postmaster.pid"));
            return lines.isEmpty() ? Optional.empty() : ProcessHandle.of(Long.parseLong(lines.getFirst().trim()))
                    .filter(p -> p.info().command().map(c -> c.endsWith("postgres")).orElse(false));
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
