package io.modelmerge.mergeservice.jobs;

import java.time.OffsetDateTime;
import java.util.UUID;

/**
 * A job as stored: the request (and the digest its idempotency key is bound to), its state, attempts, progress
 * and outcome. Times are null until they happen.
 */
public record MergeJob(UUID id, JobRequest request, String requestDigest, JobStatus state, int attempts,
                       int maxAttempts, boolean cancelRequested, String error, String resultVersion,
                       JobProgress progress, OffsetDateTime createdAt, OffsetDateTime startedAt,
                       OffsetDateTime finishedAt, Submitter submitter) {
    /** Who submitted the job: its token's name and id. */
    public record Submitter(String name, String tokenId) {
    }

}
