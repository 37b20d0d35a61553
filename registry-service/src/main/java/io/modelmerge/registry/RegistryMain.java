package io.modelmerge.registry;

import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.annotations.QuarkusMain;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.nio.file.Path;

/**
 * Starts the registry. With no database configured ({@code QUARKUS_DATASOURCE_JDBC_URL} unset) it first starts
 * the embedded PostgreSQL in {@code <data dir>/registry-db}, so a fresh machine needs nothing installed.
 */
@QuarkusMain
public final class RegistryMain {
    private static final String JDBC_URL = "quarkus.datasource.jdbc.url";
    private static final String DATA_DIR = "modelmerge.data-dir";

    public static void main(String... args) throws Exception {
        // Quarkus has not read its configuration yet, so these two settings are looked up where a user sets them.
        String url = setting(JDBC_URL, "QUARKUS_DATASOURCE_JDBC_URL");
        if (url == null) {
            String dir = setting(DATA_DIR, "MODELMERGE_DATA_DIR");
            Path dataDir = Path.of(dir != null ? dir : System.getProperty("user.home") + "/.modelmerge");
            System.setProperty(DATA_DIR, dataDir.toString());
            EmbeddedPostgres postgres = EmbeddedDatabase.start(dataDir.resolve("registry-db"));
            System.setProperty(JDBC_URL, postgres.getJdbcUrl("postgres", "postgres"));
            System.setProperty("quarkus.datasource.username", "postgres");
        }
        Quarkus.run(args);
    }

    private static String setting(String property, String environment) {
        String value = System.getProperty(property);
        if (value == null || value.isBlank()) {
            value = System.getenv(environment);
        }
        return value == null || value.isBlank() ? null : value;
    }
}
