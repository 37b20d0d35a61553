package io.modelmerge.registry.service;

import io.modelmerge.registry.client.ModelName;
import io.modelmerge.registry.content.StorageLocations;
import io.modelmerge.registry.db.IndexTaskRow.Registered;
import io.modelmerge.registry.db.IndexTaskRow.Report;
import io.modelmerge.registry.db.IndexTaskRow.Skipped;
import io.modelmerge.registry.db.IndexTaskRow;
import io.modelmerge.registry.db.IndexTaskTable;
import io.modelmerge.registry.model.RegistryException;
import io.modelmerge.registry.model.RequestNames;
import io.modelmerge.service.db.Database;
import io.modelmerge.storage.blob.Located;
import io.modelmerge.storage.blob.S3Location;
import io.quarkus.runtime.StartupEvent;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.io.IOException;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.jboss.logging.Logger;

/**
 * Scans a storage prefix in the background and registers every checkpoint directory found there as a version of
 * {@code namespace/<its path>}, idempotently: content already registered is reported as skipped, with its ref.
 * Progress is stored after each directory, so {@code GET /index/{id}} shows it while the scan runs.
 */
@ApplicationScoped
public class Indexer {
    private static final Logger LOG = Logger.getLogger(Indexer.class);

    private final Database db;
    private final StorageLocations locations;
    private final VersionRegistration registration;
    private final ExecutorService scans = Executors.newFixedThreadPool(2,
            Thread.ofPlatform().daemon().name("registry-index-", 0).factory());

    public Indexer(Database db, StorageLocations locations, VersionRegistration registration) {
        this.db = db;
        this.locations = locations;
        this.registration = registration;
    }

    void failInterruptedScans(@Observes StartupEvent event) {
        int failed = db.transaction(IndexTaskTable::failInterrupted);
        if (failed > 0) {
            LOG.warnf("Marked %d index task(s) left running by a previous process as FAILED", failed);
        }
    }

    /** Starts scanning {@code request.uri}; the task is returned RUNNING. */
    public IndexTaskRow start(IndexRequest request, String user) {
        RequestNames.namespace("namespace", request.namespace());
        Located at = locations.locate("uri", request.uri());
        if (at.file()) {
            throw RegistryException.badRequest("uri", "'" + request.uri() + "' is a file; index a directory or prefix");
        }
        UUID id = UUID.randomUUID();
        db.transaction(c -> {
            IndexTaskTable.create(c, id, request.uri(), request.namespace(), user);
            return null;
        });
        scans.submit(() -> scan(id, at, request, user));
        return task(id.toString());
    }

    public IndexTaskRow task(String id) {
        UUID uuid;
        try {
            uuid = UUID.fromString(id);
        } catch (IllegalArgumentException e) {
            throw RegistryException.notFound("No index task " + id);
        }
        return db.transaction(c -> IndexTaskTable.find(c, uuid))
                .orElseThrow(() -> RegistryException.notFound("No index task " + id));
    }

    private void scan(UUID id, Located at, IndexRequest request, String user) {
        List<Registered> registered = new ArrayList<>();
        List<Skipped> skipped = new ArrayList<>();
        int found = 0;
        try {
            Set<String> dirs = CheckpointDirectories.find(at.store().list(at.key()));
            found = dirs.size();
            String fallback = request.uri().startsWith("s3://") ? S3Location.parse(URI.create(request.uri())).bucket()
                    : "model";
            for (String dir : dirs) {
                String storageUri = StorageLocations.uriOf(at.store(), dir);
                try {
                    ModelName model = RequestNames.model("name", request.namespace() + "/"
                            + CheckpointDirectories.modelName(at.key(), dir, fallback));
                    var result = registration.register(model, new RegisterVersionRequest(storageUri, null, null, null,
                            null, null, null, "indexed from " + request.uri(), null,
                            new RegisterVersionRequest.NewModel("", Map.of())), user);
                    if (result.created()) {
                        registered.add(new Registered(storageUri, result.version().ref()));
                    } else {
                        skipped.add(new Skipped(storageUri, "same content as " + result.version().ref()));
                    }
                } catch (RegistryException e) {
                    skipped.add(new Skipped(storageUri, e.getMessage()));
                }
                save(id, "RUNNING", new Report(found, registered, skipped), null);
            }
            save(id, "SUCCEEDED", new Report(found, registered, skipped), null);
        } catch (RuntimeException | IOException e) {
            LOG.errorf(e, "Index task %s over %s failed", id, request.uri());
            save(id, "FAILED", new Report(found, registered, skipped), e.getMessage());
        }
    }

    private void save(UUID id, String state, Report report, String error) {
        db.transaction(c -> {
            IndexTaskTable.update(c, id, state, report, error);
            return null;
        });
    }

    @PreDestroy
    void stop() {
        scans.shutdownNow();
    }
}
