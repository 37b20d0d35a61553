package io.modelmerge.mergeservice.jobs;

import io.modelmerge.service.db.Database;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

/** Reading jobs and asking for their cancellation. */
@ApplicationScoped
public class JobQueries {
    private final Database db;

    public JobQueries(Database db) {
        this.db = db;
    }

    public MergeJob get(UUID id) {
        return db.read(c -> JobTable.find(c, id))
                .orElseThrow(() -> new JobException(JobException.Kind.NOT_FOUND, "no job " + id));
    }

    /** As {@link JobTable#list}: among the output models {@code grants} cover (empty: all). */
    public List<MergeJob> list(Optional<JobStatus> state, Optional<String> outputModel, Optional<List<String>> grants,
                               int limit, long offset) {
        return db.read(c -> JobTable.list(c, state, outputModel, grants, limit, offset));
    }

    /** Cancels a queued job now, asks the worker of a running one to stop; returns the job as it is then. */
    public MergeJob cancel(UUID id) {
        get(id);
        db.transaction(c -> {
            JobTable.cancel(c, id);
            return null;
        });
        return get(id);
    }
}
