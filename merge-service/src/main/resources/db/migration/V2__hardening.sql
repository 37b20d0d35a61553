-- The request an idempotency key was first used with: the same key with another request is refused.
ALTER TABLE merge_job ADD COLUMN request_digest TEXT NOT NULL DEFAULT '';
-- A job whose attempt failed on something passing (the registry or storage unreachable) waits until then.
ALTER TABLE merge_job ADD COLUMN not_before TIMESTAMPTZ;
-- Whether a finished job's partial uploads are known to be deleted; start-up deletes those of the others.
ALTER TABLE merge_job ADD COLUMN outputs_cleaned BOOLEAN NOT NULL DEFAULT false;
UPDATE merge_job SET outputs_cleaned = true WHERE state IN ('SUCCEEDED', 'FAILED', 'CANCELLED');
