package io.modelmerge.registry.db;

import java.time.OffsetDateTime;
import java.util.List;

/** A namespace's subscription: where its events go, and the secret that signs them. */
public record WebhookRow(String id, String namespace, String url, List<String> events, String secret, String createdBy,
                         OffsetDateTime createdAt) {

    /** One delivery of one event to one webhook, with its state. */
    public record Delivery(long id, String webhookId, String event, String payload, String state, int attempts,
                           OffsetDateTime nextAttemptAt, Integer lastStatus, String lastError, Long replayOf,
                           OffsetDateTime createdAt, OffsetDateTime deliveredAt) {
    }
}
