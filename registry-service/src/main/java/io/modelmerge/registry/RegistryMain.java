package io.modelmerge.registry;

import io.modelmerge.service.local.EmbeddedDefaults;
import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.annotations.QuarkusMain;

/** Starts the registry, on the embedded PostgreSQL in {@code <data dir>/registry-db} unless one is configured. */
@QuarkusMain
public final class RegistryMain {
    public static void main(String... args) throws Exception {
        EmbeddedDefaults.configureDatabase("registry-db");
        Quarkus.run(args);
    }
}
