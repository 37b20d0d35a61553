package io.modelmerge.cli;

import io.modelmerge.proto.v1.Job;
import io.modelmerge.proto.v1.JobEvent;
import io.modelmerge.proto.v1.JobRef;
import io.modelmerge.proto.v1.JobState;
import io.modelmerge.proto.v1.MergeServiceGrpc;
import io.modelmerge.proto.v1.Progress;
import java.io.PrintWriter;
import java.util.Iterator;

/** Prints jobs, and follows one to its end with a progress bar; the exit code comes from its end state. */
final class JobPrinter {
    static final int FAILED = 1;
    static final int CANCELLED = 3;

    private JobPrinter() {
    }

    static String line(Job job) {
        return String.format("%s  %-9s  %-30s  %s", job.getId(), job.getState(), job.getOutput().getModel(),
                job.getResultVersion().isEmpty() ? job.getError() : job.getResultVersion());
    }

    /** Watches {@code id} until it ends; returns 0 for SUCCEEDED, 1 for FAILED, 3 for CANCELLED. */
    static int follow(MergeServiceGrpc.MergeServiceBlockingStub stub, String id, PrintWriter out, boolean terminal) {
        Iterator<JobEvent> events = stub.watchJob(JobRef.newBuilder().setId(id).build());
        Job job = null;
        JobState shown = null;
        while (events.hasNext()) {
            job = events.next().getJob();
            if (job.getState() != shown) {
                if (terminal && shown == JobState.RUNNING) {
                    out.println();
                }
                out.println(job.getState() + (job.getAttempts() > 1 ? " (attempt " + job.getAttempts() + ")" : ""));
                shown = job.getState();
            } else if (job.getState() == JobState.RUNNING) {
                out.print(bar(job.getProgress()) + (terminal ? "\r" : "\n"));
            }
            out.flush();
        }
        if (job == null) {
            return FAILED;
        }
        return switch (job.getState()) {
            case SUCCEEDED -> {
                out.println("version " + job.getResultVersion());
                yield 0;
            }
            case CANCELLED -> CANCELLED;
            default -> {
                out.println("error: " + job.getError());
                yield FAILED;
            }
        };
    }

    private static String bar(Progress p) {
        if (p.getCandidatesTotal() > 0) {
            return String.format("%d/%d candidates  best score %s  (this candidate: %d/%d tensors)",
                    p.getCandidatesDone(), p.getCandidatesTotal(), p.hasBestScore() ? String.format("%.4f",
                            p.getBestScore()) : "-", p.getTensorsDone(), p.getTensorsTotal());
        }
        double fraction = p.getBytesTotal() == 0 ? 0 : (double) p.getBytesDone() / p.getBytesTotal();
        int filled = (int) Math.round(fraction * 30);
        return String.format("[%s%s] %5.1f%%  %d/%d tensors  %.0f MB/s  eta %.0f s", "#".repeat(filled),
                " ".repeat(30 - filled), fraction * 100, p.getTensorsDone(), p.getTensorsTotal(),
                p.getBytesPerSecond() / 1e6, p.getEtaSeconds());
    }
}
