package io.modelmerge.mergeservice.jobs;

import java.time.OffsetDateTime;
import java.util.UUID;

/** A job as stored: the request, its state, attempts, progress and outcome. Times are null until they happen. */
public record MergeJob(UUID id, JobRequest request, JobStatus state, int attempts, int maxAttempts,
                       boolean cancelRequested, String error, String resultVersion, JobProgress progress,
                       OffsetDateTime createdAt, OffsetDateTime startedAt, OffsetDateTime finishedAt) {
}
