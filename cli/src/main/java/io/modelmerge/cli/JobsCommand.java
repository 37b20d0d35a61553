package io.modelmerge.cli;

import io.modelmerge.proto.v1.JobRef;
import io.modelmerge.proto.v1.JobState;
import io.modelmerge.proto.v1.ListJobsRequest;
import io.modelmerge.proto.v1.ListJobsResponse;
import io.modelmerge.proto.v1.MergeServiceGrpc;
import java.io.PrintWriter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code mergectl jobs}, {@code watch}, {@code cancel}: the merge service's jobs. */
final class JobsCommand {
    private JobsCommand() {
    }

    @Command(name = "jobs", description = "List merge jobs, newest first.")
    static final class List extends ServiceCommand.JobCommand {
        @Option(names = "--state", description = "Only jobs in this state: ${COMPLETION-CANDIDATES}.")
        JobState state = JobState.JOB_STATE_UNSPECIFIED;

        @Option(names = "--output", paramLabel = "NS/NAME", description = "Only jobs writing this model.")
        String output = "";

        @Option(names = "--limit", description = "At most this many. Default: 50.")
        int limit = 50;

        @Override
        int run(MergeServiceGrpc.MergeServiceBlockingStub stub, PrintWriter out) {
            ListJobsResponse jobs = stub.listJobs(ListJobsRequest.newBuilder().setState(state)
                    .setOutputModel(output).setPageSize(limit).build());
            jobs.getJobsList().forEach(j -> out.println(JobPrinter.line(j)));
            return 0;
        }
    }

    @Command(name = "watch", description = "Follow a job to its end; exit 0 on success, 1 on failure, 3 if cancelled.")
    static final class Watch extends ServiceCommand.JobCommand {
        @Parameters(index = "0", paramLabel = "ID")
        String id;

        @Override
        int run(MergeServiceGrpc.MergeServiceBlockingStub stub, PrintWriter out) {
            return JobPrinter.follow(stub, id, out, System.console() != null);
        }
    }

    @Command(name = "cancel", description = "Cancel a queued or running job.")
    static final class Cancel extends ServiceCommand.JobCommand {
        @Parameters(index = "0", paramLabel = "ID")
        String id;

        @Override
        int run(MergeServiceGrpc.MergeServiceBlockingStub stub, PrintWriter out) {
            out.println(JobPrinter.line(stub.cancelJob(JobRef.newBuilder().setId(id).build())));
            return 0;
        }
    }
}
