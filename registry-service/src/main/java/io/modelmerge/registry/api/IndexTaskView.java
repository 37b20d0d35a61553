package io.modelmerge.registry.api;

import java.time.OffsetDateTime;
import java.util.List;

/** A scan of a storage prefix and what it found: state RUNNING, SUCCEEDED or FAILED. */
public record IndexTaskView(String id, String uri, String namespace, String state, Report report, String error,
                            String createdBy, OffsetDateTime createdAt, OffsetDateTime finishedAt) {

    /**
     * @param found      checkpoint directories found under the prefix
     * @param registered new versions, as refs
     * @param skipped    directories not registered, each with the reason
     */
    public record Report(int found, List<Registered> registered, List<Skipped> skipped) {
        public Report {
            registered = List.copyOf(registered);
            skipped = List.copyOf(skipped);
        }
    }

    public record Registered(String storageUri, String ref) {
    }

    public record Skipped(String storageUri, String reason) {
    }
}
