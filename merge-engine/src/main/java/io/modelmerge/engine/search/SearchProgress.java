package io.modelmerge.engine.search;

import java.util.OptionalDouble;

/**
 * How far a search is: candidates scored (from the cache or by the evaluator, or failed) of the most it will score,
 * and the best score so far.
 */
public record SearchProgress(int candidatesDone, int candidatesTotal, OptionalDouble bestScore) {
}
