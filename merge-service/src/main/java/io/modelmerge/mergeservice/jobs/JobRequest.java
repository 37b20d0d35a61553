package io.modelmerge.mergeservice.jobs;

import java.util.Map;

/** A job as submitted and checked, its inputs pinned, ready to be queued. */
public record JobRequest(String recipe, String outputModel, String outputAlias, Map<String, String> outputTags,
                         String outputDescription, long seed, long memoryBytes, long shardSizeBytes, String outDtype,
                         int priority, String idempotencyKey, Map<String, Pin> pinned) {
    public JobRequest {
        outputTags = Map.copyOf(outputTags);
        pinned = Map.copyOf(pinned);
    }
}
