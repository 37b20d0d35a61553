package io.modelmerge.engine.search;

import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Scores by (evaluator name and version, content digest): a candidate whose content was scored before by the same
 * evaluator is not sent again. Failed evaluations are not cached. In memory for one process
 * ({@link #inMemory()}), or stored with the merge service's jobs so every job and replica shares it.
 */
public interface ScoreCache {
    Optional<Score> get(String evaluator, String contentDigest);

    void put(String evaluator, String contentDigest, Score score);

    /** A cache that lives as long as this object. */
    static ScoreCache inMemory() {
        record Key(String evaluator, String contentDigest) {
        }
        Map<Key, Score> scores = new ConcurrentHashMap<>();
        return new ScoreCache() {
            @Override
            public Optional<Score> get(String evaluator, String contentDigest) {
                return Optional.ofNullable(scores.get(new Key(evaluator, contentDigest)));
            }

            @Override
            public void put(String evaluator, String contentDigest, Score score) {
                scores.put(new Key(evaluator, contentDigest), score);
            }
        };
    }
}
