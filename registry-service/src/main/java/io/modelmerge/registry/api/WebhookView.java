package io.modelmerge.registry.api;

import io.modelmerge.registry.db.WebhookRow;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Map;

/** A webhook as the API shows it: its secret only in the answer that made it. */
public record WebhookView(String id, String namespace, String url, List<String> events, String secret,
                          String createdBy, OffsetDateTime createdAt) {
    static WebhookView made(WebhookRow row) {
        return new WebhookView(row.id(), row.namespace(), row.url(), row.events(), row.secret(), row.createdBy(),
                row.createdAt());
    }

    static WebhookView listed(WebhookRow row) {
        return new WebhookView(row.id(), row.namespace(), row.url(), row.events(), null, row.createdBy(),
                row.createdAt());
    }

    /** {@code POST /webhooks}. */
    public record Request(String namespace, String url, List<String> events) {
    }

    /** {@code POST /events/job-finished}: a job of the merge service ended. */
    public record JobFinished(String model, Map<String, Object> job) {
    }
}
