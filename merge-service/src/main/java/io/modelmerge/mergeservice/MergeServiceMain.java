package io.modelmerge.mergeservice;

import io.modelmerge.service.local.EmbeddedDefaults;
import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.annotations.QuarkusMain;

/** Starts the merge service, on the embedded PostgreSQL in {@code <data dir>/merge-db} unless one is configured. */
@QuarkusMain
public final class MergeServiceMain {
    public static void main(String... args) throws Exception {
        EmbeddedDefaults.configureDatabase("merge-db");
        Quarkus.run(args);
    }
}
