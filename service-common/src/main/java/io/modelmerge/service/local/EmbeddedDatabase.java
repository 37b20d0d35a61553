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
 * directory that is kept across restarts. It listens on 127.0.0.1 only, on a free port.
 */
public final class EmbeddedDatabase {
    private EmbeddedDatabase() {
    }

    /** Starts (creating on first use) the cluster in {@code directory}; stopped by a JVM shutdown hook. */
    public static EmbeddedPostgres start(Path directory) throws IOException {
        Files.createDirectories(directory);
        stopOrphan(directory);
        return EmbeddedPostgres.builder()
                .setDataDirectory(directory)
                .setCleanDataDirectory(false)
                .setPort(freePort())
                .setServerConfig("listen_addresses", "127.0.0.1")
                .setPGStartupWait(Duration.ofSeconds(60))
                .start();
    }

    /**
     * A process killed with -9 leaves its PostgreSQL running on the cluster, which would refuse a second server;
     * stop that one first (SIGTERM: a smart shutdown, it has no clients left).
     */
    private static void stopOrphan(Path directory) throws IOException {
        Path pidFile = directory.resolve("postmaster.pid");
        if (!Files.exists(pidFile)) {
            return;
        }
        List<String> lines = Files.readAllLines(pidFile);
        Optional<ProcessHandle> orphan = lines.isEmpty() ? Optional.empty()
                : ProcessHandle.of(Long.parseLong(lines.getFirst().trim()))
                .filter(p -> p.info().command().map(c -> c.endsWith("postgres")).orElse(false));
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

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
