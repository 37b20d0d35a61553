package io.modelmerge.registry.webhooks;

import io.modelmerge.registry.client.ModelName;
import io.modelmerge.registry.db.WebhookRow;
import io.modelmerge.registry.db.WebhookTable;
import io.modelmerge.registry.model.RegistryException;
import io.modelmerge.service.db.Database;
import jakarta.enterprise.context.ApplicationScoped;
import java.net.URI;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/** A namespace's webhooks: registered, listed, removed; their deliveries, listed and replayed. */
@ApplicationScoped
public class Webhooks {
    private static final SecureRandom RANDOM = new SecureRandom();

    private final Database db;

    public Webhooks(Database db) {
        this.db = db;
    }

    /** A new webhook with a new secret (which the answer to this call alone shows). */
    public WebhookRow register(String namespace, String url, List<String> events, String createdBy) {
        if (namespace == null) {
            throw RegistryException.badRequest("namespace", "is required");
        }
        try {
            ModelName.checkPart(namespace);
        } catch (RuntimeException e) {
            throw RegistryException.badRequest("namespace", e.getMessage());
        }
        URI target;
        try {
            target = URI.create(url == null ? "" : url);
        } catch (IllegalArgumentException e) {
            throw RegistryException.badRequest("url", "not a URL: " + e.getMessage());
        }
        if (!("http".equals(target.getScheme()) || "https".equals(target.getScheme())) || target.getHost() == null) {
            throw RegistryException.badRequest("url", "an http:// or https:// URL is required, got '" + url + "'");
        }
        if (events == null || events.isEmpty()) {
            throw RegistryException.badRequest("events", "at least one of " + WebhookEvents.ALL);
        }
        for (String event : events) {
            if (!WebhookEvents.ALL.contains(event)) {
                throw RegistryException.badRequest("events", "'" + event + "' is not one of " + WebhookEvents.ALL);
            }
        }
        byte[] secret = new byte[32];
        RANDOM.nextBytes(secret);
        byte[] id = new byte[9];
        RANDOM.nextBytes(id);
        return db.transaction(c -> WebhookTable.insert(c, "wh_" + Base64.getUrlEncoder().withoutPadding()
                .encodeToString(id), namespace, url, List.copyOf(events), Base64.getUrlEncoder().withoutPadding()
                .encodeToString(secret), createdBy));
    }

    public WebhookRow webhook(String id) {
        return db.read(c -> WebhookTable.find(c, id)).orElseThrow(() -> RegistryException.notFound("No webhook " + id));
    }

    public List<WebhookRow> inNamespace(String namespace) {
        return db.read(c -> WebhookTable.inNamespace(c, namespace));
    }

    public void delete(String id) {
        if (!db.transaction(c -> WebhookTable.delete(c, id))) {
            throw RegistryException.notFound("No webhook " + id);
        }
    }

    public List<WebhookRow.Delivery> deliveries(String id) {
        return db.read(c -> WebhookTable.deliveries(c, id, 200));
    }

    /** Delivers again what delivery {@code delivery} of webhook {@code id} carried, as a new delivery. */
    public WebhookRow.Delivery replay(String id, long delivery) {
        return db.transaction(c -> {
            WebhookRow.Delivery original = WebhookTable.delivery(c, delivery).filter(d -> d.webhookId().equals(id))
                    .orElseThrow(() -> RegistryException.notFound("Webhook " + id + " has no delivery " + delivery));
            return WebhookTable.replay(c, original.id()).orElseThrow();
        });
    }

    /** Queues {@code job.finished} for the job's output model, as reported by the merge service. */
    public void jobFinished(String model, Map<String, Object> job, String reportedBy) {
        db.transaction(c -> {
            WebhookEvents.jobFinished(c, model, job, reportedBy);
            return null;
        });
    }
}
