package io.modelmerge.mergeservice.grpc;

import com.google.protobuf.Timestamp;
import io.modelmerge.mergeservice.evaluation.RegisteredEvaluator;
import io.modelmerge.mergeservice.jobs.JobProgress;
import io.modelmerge.mergeservice.jobs.JobRecipes;
import io.modelmerge.mergeservice.jobs.JobRequest;
import io.modelmerge.mergeservice.jobs.JobStatus;
import io.modelmerge.mergeservice.jobs.MergeJob;
import io.modelmerge.proto.v1.Job;
import io.modelmerge.proto.v1.JobState;
import io.modelmerge.proto.v1.Options;
import io.modelmerge.proto.v1.Output;
import io.modelmerge.proto.v1.Progress;
import io.modelmerge.proto.v1.SubmitMergeRequest;
import java.time.OffsetDateTime;
import java.util.Map;

/** Protobuf messages to domain values and back. */
final class JobMessages {
    private JobMessages() {
    }

    static JobRequest request(SubmitMergeRequest r) {
        Output out = r.getOutput();
        Options o = r.getOptions();
        return new JobRequest(r.getRecipeYaml(), out.getModel(), out.getAlias(), out.getTagsMap(), out.getDescription(),
                o.getSeed(), o.getMemoryBytes(), o.getShardSizeBytes(), o.getOutDtype(), o.getPriority(),
                o.getStrict(), r.getIdempotencyKey(), Map.of());
    }

    static Job job(MergeJob job) {
        JobRequest r = job.request();
        JobProgress p = job.progress();
        Job.Builder b = Job.newBuilder()
                .setId(job.id().toString())
                .setState(JobState.valueOf(job.state().name()))
                .setRecipeYaml(r.recipe())
                .setOutput(Output.newBuilder().setModel(r.outputModel()).setAlias(r.outputAlias())
                        .putAllTags(r.outputTags()).setDescription(r.outputDescription()))
                .setOptions(Options.newBuilder().setSeed(r.seed()).setMemoryBytes(r.memoryBytes())
                        .setShardSizeBytes(r.shardSizeBytes()).setOutDtype(r.outDtype()).setPriority(r.priority())
                        .setStrict(r.strict()))
                .setIdempotencyKey(r.idempotencyKey())
                .setSubmittedBy(job.submitter().name())
                .setAttempts(job.attempts())
                .setError(job.error())
                .setResultVersion(job.resultVersion())
                .setProgress(progress(p))
                .setCreatedAt(timestamp(job.createdAt()));
        r.pinned().forEach((ref, pin) -> b.putPinnedInputs(ref, pin.version().isEmpty() ? pin.storageUri() : pin.version()));
        if (job.startedAt() != null) {
            b.setStartedAt(timestamp(job.startedAt()));
        }
        if (job.finishedAt() != null) {
            b.setFinishedAt(timestamp(job.finishedAt()));
        }
        return b.build();
    }

    private static Progress progress(JobProgress p) {
        Progress.Builder b = Progress.newBuilder().setTensorsDone(p.tensorsDone()).setTensorsTotal(p.tensorsTotal())
                .setBytesDone(p.bytesDone()).setBytesTotal(p.bytesTotal()).setBytesPerSecond(p.bytesPerSecond())
                .setEtaSeconds(p.etaSeconds()).setCandidatesDone(p.candidatesDone())
                .setCandidatesTotal(p.candidatesTotal());
        if (p.bestScore() != null) {
            b.setBestScore(p.bestScore());
        }
        return b.build();
    }

    /** A job as a listing shows it: the recipe summarised (recipes run to 64 KiB; GetJob has it whole). */
    static Job listed(MergeJob job) {
        return job(job).toBuilder().clearRecipeYaml().setRecipeSummary(JobRecipes.summary(job.request().recipe()))
                .build();
    }

    /** An evaluator as the contract shows it: never its secret. */
    static io.modelmerge.proto.v1.Evaluator evaluator(RegisteredEvaluator e) {
        return io.modelmerge.proto.v1.Evaluator.newBuilder().setName(e.name()).setVersion(e.version()).setUrl(e.url())
                .setRegisteredBy(e.registeredBy()).setRegisteredAt(timestamp(e.registeredAt())).build();
    }

    static JobStatus status(JobState state) {
        return JobStatus.valueOf(state.name());
    }

    private static Timestamp timestamp(OffsetDateTime t) {
        return Timestamp.newBuilder().setSeconds(t.toEpochSecond()).setNanos(t.getNano()).build();
    }
}
