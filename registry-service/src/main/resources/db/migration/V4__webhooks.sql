-- Webhooks: a namespace's subscriptions to events, and every delivery (an outbox written in the transaction that
-- made the event, delivered by the registry in the background, retried with backoff, replayable).
CREATE TABLE webhook (
    id          text PRIMARY KEY,
    namespace   text NOT NULL,
    url         text NOT NULL,
    events      text[] NOT NULL,
    secret      text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_namespace ON webhook (namespace);

CREATE TABLE webhook_delivery (
    id              bigserial PRIMARY KEY,
    webhook_id      text NOT NULL REFERENCES webhook (id) ON DELETE CASCADE,
    event           text NOT NULL,
    payload         text NOT NULL,
    state           text NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     int,
    last_error      text,
    replay_of       bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX webhook_delivery_due ON webhook_delivery (next_attempt_at) WHERE state = 'PENDING';
