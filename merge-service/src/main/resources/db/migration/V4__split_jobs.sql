-- A job whose output has several shards runs as tasks any replica may claim: one per output shard. The job's
-- holder (its coordinator) computes the model-wide statistic first where the method needs one, then waits for
-- the tasks and commits.
ALTER TABLE merge_job ADD COLUMN statistics JSONB;
CREATE TABLE merge_task (
    job_id           UUID        NOT NULL REFERENCES merge_job (id) ON DELETE CASCADE,
    shard            INTEGER     NOT NULL,
    file             TEXT        NOT NULL,
    state            TEXT        NOT NULL CHECK (state IN ('QUEUED', 'RUNNING', 'DONE', 'FAILED')),
    attempts         INTEGER     NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    bytes_total      BIGINT      NOT NULL,
    bytes_done       BIGINT      NOT NULL DEFAULT 0,
    -- the worker that merged it, and the uploaded file's size and CRC32C, checked again at commit
    merged_by        TEXT        NOT NULL DEFAULT '',
    size             BIGINT      NOT NULL DEFAULT 0,
    crc32c           TEXT        NOT NULL DEFAULT '',
    error            TEXT        NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, shard)
);
CREATE INDEX merge_task_claimable ON merge_task (job_id, shard) WHERE state IN ('QUEUED', 'RUNNING');
