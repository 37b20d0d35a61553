package io.modelmerge.registry.db;

import java.time.OffsetDateTime;
import java.util.List;

/** A scan of a storage prefix as stored: state RUNNING, SUCCEEDED or FAILED, and its report. */
public record IndexTaskRow(String id, String uri, String namespace, String state, Report report, String error,
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

        public static Report empty() {
            return new Report(0, List.of(), List.of());
        }
    }

    public record Registered(String storageUri, String ref) {
    }

    public record Skipped(String storageUri, String reason) {
    }
}
