-- Merge jobs: the durable queue that every merge-service replica claims work from.
CREATE TABLE merge_job (
    id                 UUID PRIMARY KEY,
    -- The same key returns the same job.
    idempotency_key    TEXT UNIQUE,
    state              TEXT        NOT NULL CHECK (state IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    recipe             TEXT        NOT NULL,
    output_model       TEXT        NOT NULL,
    output_alias       TEXT        NOT NULL DEFAULT '',
    output_tags        JSONB       NOT NULL DEFAULT '{}',
    output_description TEXT        NOT NULL DEFAULT '',
    seed               BIGINT      NOT NULL,
    memory_bytes       BIGINT      NOT NULL,
    shard_size_bytes   BIGINT      NOT NULL,
    out_dtype          TEXT        NOT NULL DEFAULT '',
    priority           INTEGER     NOT NULL DEFAULT 0,
    -- ref as written in the recipe -> {"version": "ns/name@N", "storage_uri": "..."}, fixed at submission.
    pinned             JSONB       NOT NULL,
    attempts           INTEGER     NOT NULL DEFAULT 0,
    max_attempts       INTEGER     NOT NULL,
    -- A RUNNING job belongs to the worker holding an unexpired lease; an expired lease makes it claimable again.
    lease_owner        TEXT,
    lease_expires_at   TIMESTAMPTZ,
    cancel_requested   BOOLEAN     NOT NULL DEFAULT false,
    error              TEXT        NOT NULL DEFAULT '',
    result_version     TEXT        NOT NULL DEFAULT '',
    progress           JSONB       NOT NULL DEFAULT '{}',
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at         TIMESTAMPTZ,
    finished_at        TIMESTAMPTZ
);
CREATE INDEX merge_job_claimable ON merge_job (priority DESC, created_at) WHERE state IN ('QUEUED', 'RUNNING');
CREATE INDEX merge_job_output ON merge_job (output_model, created_at);
