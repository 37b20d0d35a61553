package io.modelmerge.mergeservice.jobs;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;

/** A job as submitted and checked, its inputs pinned, ready to be queued. */
public record JobRequest(String recipe, String outputModel, String outputAlias, Map<String, String> outputTags,
                         String outputDescription, long seed, long memoryBytes, long shardSizeBytes, String outDtype,
                         int priority, boolean strict, String idempotencyKey, Map<String, Pin> pinned) {
    public JobRequest {
        outputTags = Map.copyOf(outputTags);
        pinned = Map.copyOf(pinned);
    }

    /**
     * What the caller asked for, as a sha256 over every field but the key itself and the pins: an idempotency
     * key stands for one request, and the same key with a different one is refused.
     */
    public String digest() {
        StringBuilder canonical = new StringBuilder();
        for (String field : new String[] {recipe, outputModel, outputAlias, new TreeMap<>(outputTags).toString(),
                outputDescription, Long.toString(seed), Long.toString(memoryBytes), Long.toString(shardSizeBytes),
                outDtype, Integer.toString(priority), Boolean.toString(strict)}) {
            canonical.append(field.length()).append(':').append(field).append('\n');
        }
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                    .digest(canonical.toString().getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
