package io.modelmerge.service.local;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.nio.file.Path;

/**
 * What a service's main does before Quarkus starts: with no database configured
 * ({@code QUARKUS_DATASOURCE_JDBC_URL} unset) it starts the embedded PostgreSQL in {@code <data dir>/<cluster>}
 * and points the datasource at it, so a fresh machine needs nothing installed.
 */
public final class EmbeddedDefaults {
    private static final String JDBC_URL = "quarkus.datasource.jdbc.url";
    private static final String DATA_DIR = "modelmerge.data-dir";

    private EmbeddedDefaults() {
    }

    /** Starts the embedded database named {@code cluster} unless one is configured; sets the data directory. */
    public static void configureDatabase(String cluster) throws IOException {
        // Quarkus has not read its configuration yet, so these settings are looked up where a user sets them.
        String dir = setting(DATA_DIR, "MODELMERGE_DATA_DIR");
        Path dataDir = Path.of(dir != null ? dir : System.getProperty("user.home") + "/.modelmerge");
        System.setProperty(DATA_DIR, dataDir.toString());
        if (setting(JDBC_URL, "QUARKUS_DATASOURCE_JDBC_URL") == null) {
            EmbeddedPostgres postgres = EmbeddedDatabase.start(dataDir.resolve(cluster));
            System.setProperty(JDBC_URL, postgres.getJdbcUrl("postgres", "postgres"));
            System.setProperty("quarkus.datasource.username", "postgres");
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
