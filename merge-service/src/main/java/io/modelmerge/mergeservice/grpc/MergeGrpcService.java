package io.modelmerge.mergeservice.grpc;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.modelmerge.mergeservice.evaluation.Evaluators;
import io.modelmerge.mergeservice.jobs.JobException;
import io.modelmerge.mergeservice.jobs.JobQueries;
import io.modelmerge.mergeservice.jobs.JobSubmission;
import io.modelmerge.mergeservice.jobs.MergeJob;
import io.modelmerge.proto.v1.Evaluator;
import io.modelmerge.proto.v1.Job;
import io.modelmerge.proto.v1.JobEvent;
import io.modelmerge.proto.v1.JobRef;
import io.modelmerge.proto.v1.JobState;
import io.modelmerge.proto.v1.ListEvaluatorsRequest;
import io.modelmerge.proto.v1.ListEvaluatorsResponse;
import io.modelmerge.proto.v1.ListJobsRequest;
import io.modelmerge.proto.v1.ListJobsResponse;
import io.modelmerge.proto.v1.MergeServiceGrpc;
import io.modelmerge.proto.v1.RegisterEvaluatorRequest;
import io.modelmerge.proto.v1.SubmitMergeRequest;
import io.modelmerge.registry.client.Identity;
import io.modelmerge.registry.client.Scope;
import io.modelmerge.service.db.DatabaseException;
import io.modelmerge.service.limits.Limits;
import io.quarkus.grpc.GrpcService;
import io.smallrye.common.annotation.Blocking;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Supplier;
import org.jboss.logging.Logger;

/** The gRPC face of the job queue: maps messages to domain calls and refusals to status codes, nothing more. */
@GrpcService
@Blocking
public class MergeGrpcService extends MergeServiceGrpc.MergeServiceImplBase {
    private static final Logger LOG = Logger.getLogger(MergeGrpcService.class);
    private static final long WATCH_POLL_MILLIS = 200;

    private final JobSubmission submission;
    private final JobQueries queries;
    private final Callers callers;
    private final Evaluators evaluators;

    public MergeGrpcService(JobSubmission submission, JobQueries queries, Callers callers, Evaluators evaluators) {
        this.submission = submission;
        this.queries = queries;
        this.callers = callers;
        this.evaluators = evaluators;
    }

    @Override
    public void registerEvaluator(RegisterEvaluatorRequest request, StreamObserver<Evaluator> response) {
        unary(response, () -> {
            Evaluator e = request.getEvaluator();
            return JobMessages.evaluator(evaluators.register(e.getName(), e.getVersion(), e.getUrl(),
                    request.getSecret(), callers.current()));
        });
    }

    @Override
    public void listEvaluators(ListEvaluatorsRequest request, StreamObserver<ListEvaluatorsResponse> response) {
        unary(response, () -> ListEvaluatorsResponse.newBuilder().addAllEvaluators(evaluators.list(callers.current())
                .stream().map(JobMessages::evaluator).toList()).build());
    }

    @Override
    public void submitMerge(SubmitMergeRequest request, StreamObserver<Job> response) {
        unary(response, () -> JobMessages.job(submission.submit(JobMessages.request(request), callers.current())));
    }

    @Override
    public void getJob(JobRef request, StreamObserver<Job> response) {
        unary(response, () -> JobMessages.job(readable(callers.current(), queries.get(id(request)))));
    }

    @Override
    public void listJobs(ListJobsRequest request, StreamObserver<ListJobsResponse> response) {
        unary(response, () -> {
            Identity caller = callers.current();
            if (!caller.has(Scope.READ)) {
                throw JobException.denied(caller, "read jobs");
            }
            int size = request.getPageSize() == 0 ? 50 : request.getPageSize();
            if (size < 0 || size > 500) {
                throw new JobException(JobException.Kind.INVALID_ARGUMENT, "page_size: 1 to 500, got " + size);
            }
            long offset;
            try {
                offset = request.getPageToken().isEmpty() ? 0 : Long.parseLong(request.getPageToken());
            } catch (NumberFormatException e) {
                throw new JobException(JobException.Kind.INVALID_ARGUMENT, "page_token: not one this service gave out");
            }
            if (offset < 0) {
                throw new JobException(JobException.Kind.INVALID_ARGUMENT, "page_token: not one this service gave out");
            }
            List<MergeJob> jobs = queries.list(request.getState() == JobState.JOB_STATE_UNSPECIFIED ? Optional.empty()
                            : Optional.of(JobMessages.status(request.getState())),
                    request.getOutputModel().isEmpty() ? Optional.empty() : Optional.of(request.getOutputModel()),
                    caller.readsEverything() ? Optional.empty() : Optional.of(caller.namespaces()), size + 1, offset);
            // A page ends at page_size jobs or at about LIST_PAGE_BYTES, whichever comes first, but holds one job
            // at least: a listing never grows past what a client accepts.
            ListJobsResponse.Builder b = ListJobsResponse.newBuilder();
            int bytes = 0;
            int taken = 0;
            for (MergeJob job : jobs.subList(0, Math.min(size, jobs.size()))) {
                Job listed = JobMessages.listed(job);
                if (taken > 0 && bytes + listed.getSerializedSize() > Limits.LIST_PAGE_BYTES) {
                    break;
                }
                b.addJobs(listed);
                bytes += listed.getSerializedSize();
                taken++;
            }
            if (jobs.size() > taken) {
                b.setNextPageToken(Long.toString(offset + taken));
            }
            return b.build();
        });
    }

    @Override
    public void cancelJob(JobRef request, StreamObserver<Job> response) {
        unary(response, () -> {
            Identity caller = callers.current();
            MergeJob job = queries.get(id(request));
            if (!caller.may(Scope.SUBMIT, job.request().outputModel())) {
                throw JobException.denied(caller, "cancel jobs for " + job.request().outputModel());
            }
            return JobMessages.job(queries.cancel(job.id()));
        });
    }

    /** {@code job}, if the caller may read its output model. */
    private static MergeJob readable(Identity caller, MergeJob job) {
        if (!caller.may(Scope.READ, job.request().outputModel())) {
            throw JobException.denied(caller, "read jobs for " + job.request().outputModel());
        }
        return job;
    }

    @Override
    public void watchJob(JobRef request, StreamObserver<JobEvent> response) {
        ServerCallStreamObserver<JobEvent> call = (ServerCallStreamObserver<JobEvent>) response;
        try {
            Identity caller = callers.current();
            UUID id = id(request);
            readable(caller, queries.get(id));
            Job last = null;
            while (!call.isCancelled()) {
                Job now = JobMessages.job(queries.get(id));
                if (!now.equals(last)) {
                    response.onNext(JobEvent.newBuilder().setJob(now).build());
                    last = now;
                }
                if (JobMessages.status(now.getState()).terminal()) {
                    response.onCompleted();
                    return;
                }
                Thread.sleep(WATCH_POLL_MILLIS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            response.onError(Status.CANCELLED.withDescription("the service is stopping").asRuntimeException());
        } catch (RuntimeException e) {
            response.onError(status(e));
        }
    }

    private static <T> void unary(StreamObserver<T> response, Supplier<T> call) {
        T result;
        try {
            result = call.get();
        } catch (RuntimeException e) {
            response.onError(status(e));
            return;
        }
        response.onNext(result);
        response.onCompleted();
    }

    private static UUID id(JobRef ref) {
        try {
            return UUID.fromString(ref.getId());
        } catch (IllegalArgumentException e) {
            throw new JobException(JobException.Kind.INVALID_ARGUMENT, "id: '" + ref.getId() + "' is not a job id");
        }
    }

    /**
     * A refusal's status and message as the contract gives them; anything else is INTERNAL with a reference to
     * the log, never the exception's class, SQL or trace.
     */
    private static StatusRuntimeException status(RuntimeException e) {
        if (e instanceof JobException job) {
            Status status = switch (job.kind()) {
                case INVALID_ARGUMENT -> Status.INVALID_ARGUMENT;
                case NOT_FOUND -> Status.NOT_FOUND;
                case FAILED_PRECONDITION -> Status.FAILED_PRECONDITION;
                case ALREADY_EXISTS -> Status.ALREADY_EXISTS;
                case UNAVAILABLE -> Status.UNAVAILABLE;
                case UNAUTHENTICATED -> Status.UNAUTHENTICATED;
                case PERMISSION_DENIED -> Status.PERMISSION_DENIED;
            };
            return status.withDescription(e.getMessage()).asRuntimeException();
        }
        if (e instanceof DatabaseException db && db.unavailable()) {
            LOG.warn("Database unavailable: " + e.getMessage());
            return Status.UNAVAILABLE.withDescription("the merge service's database is unavailable; retry later")
                    .asRuntimeException();
        }
        String reference = UUID.randomUUID().toString();
        LOG.errorf(e, "Unexpected failure (reference %s)", reference);
        return Status.INTERNAL.withDescription("internal error (reference " + reference + " in the merge service's log)")
                .asRuntimeException();
    }
}
