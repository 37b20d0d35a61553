package io.modelmerge.mergeservice.evaluation;

import java.time.OffsetDateTime;

/** An evaluator as registered: {@code name} is {@code ns/name}; the secret signs the requests sent to it. */
public record RegisteredEvaluator(String name, String version, String url, String secret, String registeredBy,
                                  OffsetDateTime registeredAt) {
    /** How recipes name it, and the first half of its scores' cache key. */
    public String ref() {
        return name + "@" + version;
    }
}
