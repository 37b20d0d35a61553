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
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.logging.Logger;

/**
 * This replica's workers: each claims a job from the shared queue, runs it, and claims the next; idle ones poll.
 * On shutdown a running job is given back to the queue for another replica.
 */
@ApplicationScoped
public class JobWorkers {
    private static final Logger LOG = Logger.getLogger(JobWorkers.class);

    private final Database db;
    private final MergeRun run;
    private final MergeServiceConfig config;
    private final AtomicBoolean stopping = new AtomicBoolean();
    private final List<Thread> threads = new ArrayList<>();

    public JobWorkers(Database db, MergeRun run, MergeServiceConfig config) {
        this.db = db;
        this.run = run;
        this.config = config;
    }

    void start(@Observes StartupEvent event) {
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
        stopping.set(true);
        for (Thread thread : threads) {
            thread.join(config.lease().toMillis());
        }
        run.stop();
    }
}
