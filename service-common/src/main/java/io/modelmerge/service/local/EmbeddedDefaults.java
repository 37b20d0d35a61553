package io.modelmerge.service.local;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * What a service's main does before Quarkus starts: with no database configured
 * ({@code QUARKUS_DATASOURCE_JDBC_URL} unset) it starts the embedded PostgreSQL in {@code <data dir>/<cluster>}
 * and points the datasource at it, so a fresh machine needs nothing installed. The database is stopped last:
 * after the application's own shutdown (workers handing their jobs back) has used it, by
 * {@link EmbeddedDatabaseLifecycle}; a shutdown hook stops it too when the application never started.
 */
public final class EmbeddedDefaults {
    private static final String JDBC_URL = "quarkus.datasource.jdbc.url";
    private static final String DATA_DIR = "modelmerge.data-dir";
    /** How long the hook waits for the application's shutdown to finish with the database. */
    private static final long SHUTDOWN_WAIT_SECONDS = 60;

    private static EmbeddedPostgres running;
    private static Path cluster;
    /** The embedded cluster's postmaster, found once: liveness asks it whether it is alive, cheaply. */
    private static volatile Optional<ProcessHandle> postmaster = Optional.empty();
    private static volatile boolean applicationStarted;
    private static final CountDownLatch stopped = new CountDownLatch(1);

    private EmbeddedDefaults() {
    }

    /** Starts the embedded database named {@code cluster} unless one is configured; sets the data directory. */
    public static void configureDatabase(String clusterName) throws IOException {
        // Quarkus has not read its configuration yet, so these settings are looked up where a user sets them.
        String dir = setting(DATA_DIR, "MODELMERGE_DATA_DIR");
        Path dataDir = Path.of(dir != null ? dir : System.getProperty("user.home") + "/.modelmerge");
        System.setProperty(DATA_DIR, dataDir.toString());
        if (setting(JDBC_URL, "QUARKUS_DATASOURCE_JDBC_URL") == null) {
            cluster = dataDir.resolve(clusterName);
            running = EmbeddedDatabase.start(cluster);
            postmaster = EmbeddedDatabase.postmaster(cluster);
            System.setProperty(JDBC_URL, running.getJdbcUrl("postgres", "postgres"));
            System.setProperty("quarkus.datasource.username", "postgres");
            Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().name("embedded-postgres-stop").unstarted(() -> {
                try {
                    if (applicationStarted) {
                        stopped.await(SHUTDOWN_WAIT_SECONDS, TimeUnit.SECONDS);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                stop();
            }));
        }
    }

    /** The embedded cluster's directory, when this process runs one. */
    public static Optional<Path> cluster() {
        return Optional.ofNullable(cluster);
    }

    /** Whether this process runs an embedded database, and then whether it is alive. */
    static Optional<Boolean> embeddedAlive() {
        return cluster == null ? Optional.empty() : Optional.of(postmaster.map(ProcessHandle::isAlive).orElse(false));
    }

    static void applicationStarted() {
        applicationStarted = true;
    }

    /** Stops the embedded database, once; the shutdown hook then has nothing left to wait for. */
    static synchronized void stop() {
        try {
            if (running != null) {
                running.close();
                running = null;
            }
        } catch (IOException e) {
            System.err.println("Stopping the embedded PostgreSQL failed: " + e.getMessage());
        } finally {
            stopped.countDown();
        }
    }

    private static String setting(String property, String environment) {
        String value = System.getProperty(property);
        if (value == null || value.isBlank()) {
            value = System.getenv(environment);
        }
        return value == null || value.isBlank() ? null : value;
    }
}
