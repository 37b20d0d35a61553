package io.modelmerge.engine.search;

import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Scores by (evaluator name and version, content digest): a candidate whose content was scored before by the same
 * evaluator is not sent again. Failed evaluations are not cached.
 */
public final class ScoreCache {
    private record Key(String evaluator, String contentDigest) {
    }

    private final Map<Key, Score> scores = new ConcurrentHashMap<>();

    public Optional<Score> get(String evaluator, String contentDigest) {
        return Optional.ofNullable(scores.get(new Key(evaluator, contentDigest)));
    }

    public void put(String evaluator, String contentDigest, Score score) {
        scores.put(new Key(evaluator, contentDigest), score);
    }
}
