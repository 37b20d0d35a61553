package io.modelmerge.mergeservice.jobs;

import io.modelmerge.mergeservice.MergeServiceConfig;
import io.modelmerge.service.db.Database;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.logging.Logger;

/**
 * This replica's workers: each claims a job from the shared queue, runs it, and claims the next; idle ones poll.
 * At start-up, what a killed process left is deleted first. On shutdown every running merge stops at its next
 * block and its job is handed back to the queue (its attempt given back too), before the database goes.
 */
@ApplicationScoped
public class JobWorkers {
    private static final Logger LOG = Logger.getLogger(JobWorkers.class);
    /** How long shutdown waits for workers to hand their jobs back; then the leases expire instead. */
    private static final long STOP_WAIT_SECONDS = 20;

    private final Database db;
    private final MergeRun run;
    private final ShardRun shards;
    private final JobOutputs outputs;
    private final MergeServiceConfig config;
    private final AtomicBoolean stopping = new AtomicBoolean();
    private final List<Thread> threads = new ArrayList<>();

    public JobWorkers(Database db, MergeRun run, ShardRun shards, JobOutputs outputs, MergeServiceConfig config) {
        this.db = db;
        this.run = run;
        this.shards = shards;
        this.outputs = outputs;
        this.config = config;
    }

    void start(@Observes StartupEvent event) {
        outputs.sweep();
        String process = ManagementFactory.getRuntimeMXBean().getName() + "-" + UUID.randomUUID().toString().substring(0, 8);
        for (int i = 0; i < config.workers(); i++) {
            String owner = process + "-w" + i;
            threads.add(Thread.ofPlatform().name("merge-worker-" + i).start(() -> work(owner)));
        }
        LOG.infof("%d merge worker(s) started as %s", config.workers(), process);
    }

    private void work(String owner) {
        while (!stopping.get()) {
            try {
                // a shard of a job already running first, so split jobs finish before new ones start
                Optional<ShardTask> task = db.transaction(c -> TaskTable.claim(c, owner, config.lease(),
                        Optional.empty()));
                if (task.isPresent()) {
                    LOG.infof("Claimed shard %d of job %s", task.get().shard(), task.get().jobId());
                    shards.run(task.get(), owner, stopping);
                    continue;
                }
                Optional<UUID> claimed = db.transaction(c -> JobTable.claim(c, owner, config.lease()));
                if (claimed.isPresent()) {
                    LOG.infof("Claimed job %s", claimed.get());
                    run.run(claimed.get(), owner, stopping);
                } else {
                    Thread.sleep(config.pollInterval());
                }
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                LOG.error("Worker loop failed; retrying", e);
                try {
                    Thread.sleep(config.pollInterval());
                } catch (InterruptedException interrupted) {
                    return;
                }
            }
        }
    }

    void stop(@Observes ShutdownEvent event) throws InterruptedException {
        long start = System.nanoTime();
        stopping.set(true);
        run.stopAll();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(STOP_WAIT_SECONDS);
        for (Thread thread : threads) {
            thread.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
        }
        run.stop();
        shards.stop();
        LOG.infof("Workers stopped in %d ms", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
    }
}
