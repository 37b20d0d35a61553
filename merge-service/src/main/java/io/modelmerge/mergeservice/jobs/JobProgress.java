package io.modelmerge.mergeservice.jobs;

import io.modelmerge.engine.exec.MergeProgress;
import io.modelmerge.engine.search.SearchProgress;

/**
 * How far a running job is, as stored with the job: a merge's tensors and bytes, a search's candidates and best
 * score (null until one is scored).
 */
public record JobProgress(long tensorsDone, long tensorsTotal, long bytesDone, long bytesTotal, double bytesPerSecond,
                          double etaSeconds, int candidatesDone, int candidatesTotal, Double bestScore) {
    public static final JobProgress NONE = new JobProgress(0, 0, 0, 0, 0, 0);

    /** A merge's progress. */
    public JobProgress(long tensorsDone, long tensorsTotal, long bytesDone, long bytesTotal, double bytesPerSecond,
                       double etaSeconds) {
        this(tensorsDone, tensorsTotal, bytesDone, bytesTotal, bytesPerSecond, etaSeconds, 0, 0, null);
    }

    public static JobProgress of(MergeProgress p) {
        return new JobProgress(p.tensorsDone(), p.tensorsTotal(), p.bytesDone(), p.bytesTotal(), p.bytesPerSecond(),
                p.eta().toMillis() / 1000.0);
    }

    /** A search's progress, with the merge of the candidate in hand. */
    public JobProgress withSearch(SearchProgress p) {
        return new JobProgress(tensorsDone, tensorsTotal, bytesDone, bytesTotal, bytesPerSecond, etaSeconds,
                p.candidatesDone(), p.candidatesTotal(), p.bestScore().isPresent() ? p.bestScore().getAsDouble() : null);
    }

    /** A candidate's merge progress, keeping the search's. */
    public JobProgress withMerge(MergeProgress p) {
        JobProgress merge = of(p);
        return new JobProgress(merge.tensorsDone, merge.tensorsTotal, merge.bytesDone, merge.bytesTotal,
                merge.bytesPerSecond, merge.etaSeconds, candidatesDone, candidatesTotal, bestScore);
    }
}
