package io.modelmerge.mergeservice.jobs;

import java.util.UUID;

/**
 * One output shard of a split job, as the {@code merge_task} table holds it.
 *
 * @param held whether a worker holds it now (running, its lease unexpired)
 */
public record ShardTask(UUID jobId, int shard, String file, State state, int attempts, long bytesTotal, long bytesDone,
                        String mergedBy, long size, String crc32c, String error, boolean held) {

    public enum State { QUEUED, RUNNING, DONE, FAILED }
}
