package io.modelmerge.mergeservice.jobs;

import io.modelmerge.engine.exec.MergeProgress;

/** How far a running merge is, as stored with the job. */
public record JobProgress(long tensorsDone, long tensorsTotal, long bytesDone, long bytesTotal, double bytesPerSecond,
                          double etaSeconds) {
    public static final JobProgress NONE = new JobProgress(0, 0, 0, 0, 0, 0);

    public static JobProgress of(MergeProgress p) {
        return new JobProgress(p.tensorsDone(), p.tensorsTotal(), p.bytesDone(), p.bytesTotal(), p.bytesPerSecond(),
                p.eta().toMillis() / 1000.0);
    }
}
