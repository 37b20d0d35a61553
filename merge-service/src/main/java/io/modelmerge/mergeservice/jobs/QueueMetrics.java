package io.modelmerge.mergeservice.jobs;

import io.modelmerge.service.db.Database;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.sql.ResultSet;
import java.sql.Statement;

/**
 * {@code GET /q/metrics}: the shared queue's depth in the Prometheus text format, what an autoscaler scales the
 * merge service on (the production overlay's HorizontalPodAutoscaler, through a Prometheus adapter). Every
 * replica reports the same numbers: the queue is the database's.
 */
@ApplicationScoped
public class QueueMetrics {
    private final Database db;

    public QueueMetrics(Database db) {
        this.db = db;
    }

    void install(@Observes Router router) {
        router.get("/q/metrics").blockingHandler(this::metrics);
    }

    private void metrics(RoutingContext context) {
        String body = db.read(c -> {
            try (Statement s = c.createStatement();
                 ResultSet rs = s.executeQuery("""
                         SELECT (SELECT count(*) FROM merge_job WHERE state = 'QUEUED'),
                                (SELECT count(*) FROM merge_job WHERE state = 'RUNNING'),
                                (SELECT count(*) FROM merge_task t JOIN merge_job j ON j.id = t.job_id
                                 WHERE t.state = 'QUEUED' AND j.state = 'RUNNING'),
                                (SELECT count(*) FROM merge_task t JOIN merge_job j ON j.id = t.job_id
                                 WHERE t.state = 'RUNNING' AND j.state = 'RUNNING')""")) {
                rs.next();
                long queued = rs.getLong(1);
                long tasksQueued = rs.getLong(3);
                return "# HELP modelmerge_jobs_queued Jobs waiting for a worker.\n"
                        + "# TYPE modelmerge_jobs_queued gauge\nmodelmerge_jobs_queued " + queued + "\n"
                        + "# HELP modelmerge_jobs_running Jobs a worker holds.\n"
                        + "# TYPE modelmerge_jobs_running gauge\nmodelmerge_jobs_running " + rs.getLong(2) + "\n"
                        + "# HELP modelmerge_shard_tasks_queued Shards of running split jobs waiting for a worker.\n"
                        + "# TYPE modelmerge_shard_tasks_queued gauge\nmodelmerge_shard_tasks_queued " + tasksQueued + "\n"
                        + "# HELP modelmerge_shard_tasks_running Shards of running split jobs being merged.\n"
                        + "# TYPE modelmerge_shard_tasks_running gauge\nmodelmerge_shard_tasks_running " + rs.getLong(4) + "\n"
                        + "# HELP modelmerge_queue_depth Work waiting for a worker: queued jobs and queued shards.\n"
                        + "# TYPE modelmerge_queue_depth gauge\nmodelmerge_queue_depth " + (queued + tasksQueued) + "\n";
            }
        });
        context.response().putHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8").end(body);
    }
}
