package io.modelmerge.engine.search;

import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.recipe.RecipeException;
import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Scores a search's candidates: by content digest from the cache, else by the evaluator on the selection split
 * within the timeout (counted, and cached when it answers). Safe to call from several threads.
 */
final class CandidateScorer {
    /** A score, or why the evaluation gave none. */
    record Scored(Optional<Score> score, String error) {
    }

    private final MergeExecutor executor;
    private final Evaluator evaluator;
    private final ScoreCache cache;
    private final Duration timeout;
    private final Clock clock;
    private final AtomicInteger evaluations = new AtomicInteger();

    CandidateScorer(MergeExecutor executor, Evaluator evaluator, ScoreCache cache, Duration timeout, Clock clock) {
        this.executor = executor;
        this.evaluator = evaluator;
        this.cache = cache;
        this.timeout = timeout;
        this.clock = clock;
    }

    /** The score of the model at {@code location}, offered as {@code ref}. */
    Scored score(String ref, String location) throws IOException, RecipeException {
        String digest = executor.contentDigest(location);
        Optional<Score> known = cache.get(evaluator.id(), digest);
        if (known.isPresent()) {
            return new Scored(known, null);
        }
        evaluations.incrementAndGet();
        try {
            Score score = evaluator.score(new Candidate(ref, digest, location, Candidate.SELECTION_SPLIT,
                    clock.instant().plus(timeout)));
            cache.put(evaluator.id(), digest, score);
            return new Scored(Optional.of(score), null);
        } catch (EvaluationFailedException e) {
            return new Scored(Optional.empty(), e.getMessage());
        }
    }

    /** Evaluations sent so far by this scorer, over every search it served (cached scores not counted). */
    int evaluations() {
        return evaluations.get();
    }

    String evaluatorId() {
        return evaluator.id();
    }
}
