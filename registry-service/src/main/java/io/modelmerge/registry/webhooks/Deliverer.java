package io.modelmerge.registry.webhooks;

import io.modelmerge.registry.RegistryConfig;
import io.modelmerge.registry.client.Signatures;
import io.modelmerge.registry.db.WebhookTable;
import io.modelmerge.service.db.Database;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * Delivers due webhook deliveries in the background: POSTs the event's JSON, signed, and marks it DELIVERED on a
 * 2xx answer; otherwise tries again after a backoff that doubles from {@code retry-base} up to {@code max-backoff},
 * and marks it FAILED after {@code max-attempts}. Each delivery is claimed for twice the timeout before it is
 * sent (replicas skip what another has claimed), so one replica makes each attempt; one that dies sending leaves
 * it to be sent again.
 */
@ApplicationScoped
public class Deliverer {
    private static final Logger LOG = Logger.getLogger(Deliverer.class);
    private static final int BATCH = 32;

    private final Database db;
    private final RegistryConfig.Webhooks config;
    private final HttpClient http;
    private ScheduledExecutorService scheduler;

    public Deliverer(Database db, RegistryConfig config) {
        this.db = db;
        this.config = config.webhooks();
        this.http = HttpClient.newBuilder().connectTimeout(this.config.timeout()).build();
    }

    void start(@Observes StartupEvent start) {
        scheduler = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("webhooks").factory());
        long every = config.pollInterval().toMillis();
        scheduler.scheduleWithFixedDelay(this::deliverDue, every, every, TimeUnit.MILLISECONDS);
    }

    void stop(@Observes ShutdownEvent stop) {
        if (scheduler != null) {
            scheduler.shutdownNow();
        }
    }

    /**
     * One round: every due delivery, a batch at a time. A batch is claimed in one short transaction, delivered
     * outside any (no connection or row lock is held while a receiver answers), and each outcome recorded in one.
     */
    void deliverDue() {
        try {
            List<WebhookTable.Due> due;
            do {
                due = db.transaction(c -> WebhookTable.claimDue(c, BATCH, config.timeout().multipliedBy(2)));
                for (WebhookTable.Due delivery : due) {
                    Outcome outcome = attempt(delivery);
                    db.transaction(c -> {
                        if (outcome.delivered()) {
                            WebhookTable.delivered(c, delivery.id(), outcome.status());
                        } else {
                            int attempts = delivery.attempts() + 1;
                            WebhookTable.attemptFailed(c, delivery.id(), outcome.status(), outcome.error(),
                                    attempts >= config.maxAttempts() ? null : backoff(attempts));
                        }
                        return null;
                    });
                }
            } while (due.size() == BATCH);
        } catch (RuntimeException e) {
            LOG.warn("Webhook deliveries: " + e.getMessage());
        }
    }

    /** What one attempt came to: a 2xx, another status, or no answer (status null). */
    private record Outcome(boolean delivered, Integer status, String error) {
    }

    private Outcome attempt(WebhookTable.Due delivery) {
        long timestamp = System.currentTimeMillis() / 1000;
        try {
            HttpResponse<Void> answer = http.send(HttpRequest.newBuilder(URI.create(delivery.url()))
                    .timeout(config.timeout())
                    .header("Content-Type", "application/json")
                    .header("User-Agent", "modelmerge-registry")
                    .header("X-Modelmerge-Event", delivery.event())
                    .header("X-Modelmerge-Delivery", Long.toString(delivery.id()))
                    .header("X-Modelmerge-Timestamp", Long.toString(timestamp))
                    .header("X-Modelmerge-Signature", Signatures.sign(delivery.secret(), timestamp, delivery.payload()))
                    .POST(HttpRequest.BodyPublishers.ofString(delivery.payload())).build(),
                    HttpResponse.BodyHandlers.discarding());
            int status = answer.statusCode();
            return new Outcome(status / 100 == 2, status, status / 100 == 2 ? null : "the receiver answered " + status);
        } catch (IOException e) {
            return new Outcome(false, null, "the receiver could not be reached: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Outcome(false, null, "interrupted");
        }
    }

    /** retry-base · 2^(attempts − 1), at most max-backoff. */
    Duration backoff(int attempts) {
        Duration wait = config.retryBase().multipliedBy(1L << Math.min(20, attempts - 1));
        return wait.compareTo(config.maxBackoff()) > 0 ? config.maxBackoff() : wait;
    }
}
