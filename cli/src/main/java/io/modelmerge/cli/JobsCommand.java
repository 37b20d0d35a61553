package io.modelmerge.cli;

import io.modelmerge.proto.v1.JobRef;
import io.modelmerge.proto.v1.JobState;
import io.modelmerge.proto.v1.ListJobsRequest;
import io.modelmerge.proto.v1.ListJobsResponse;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code mergectl jobs}, {@code watch}, {@code cancel}: the merge service's jobs. */
final class JobsCommand {
    private JobsCommand() {
    }

    @Command(name = "jobs", description = "List merge jobs, newest first.")
    static final class List implements Callable<Integer> {
        @ParentCommand
        Mergectl mergectl;
        @Spec
        CommandSpec spec;
        @Mixin
        ServiceOptions services;

        @Option(names = "--state", description = "Only jobs in this state: ${COMPLETION-CANDIDATES}.")
        JobState state = JobState.JOB_STATE_UNSPECIFIED;

        @Option(names = "--output", paramLabel = "NS/NAME", description = "Only jobs writing this model.")
        String output = "";

        @Option(names = "--limit", description = "At most this many. Default: 50.")
        int limit = 50;

        @Override
        public Integer call() throws Exception {
            PrintWriter out = spec.commandLine().getOut();
            try (JobChannel channel = new JobChannel(services.endpoints(mergectl.environment()).mergeService())) {
                ListJobsResponse jobs = channel.stub().listJobs(ListJobsRequest.newBuilder().setState(state)
                        .setOutputModel(output).setPageSize(limit).build());
                jobs.getJobsList().forEach(j -> out.println(JobPrinter.line(j)));
            }
            out.flush();
            return 0;
        }
    }

    @Command(name = "watch", description = "Follow a job to its end; exit 0 on success, 1 on failure, 3 if cancelled.")
    static final class Watch implements Callable<Integer> {
        @ParentCommand
        Mergectl mergectl;
        @Spec
        CommandSpec spec;
        @Mixin
        ServiceOptions services;
        @Parameters(index = "0", paramLabel = "ID")
        String id;

        @Override
        public Integer call() throws Exception {
            try (JobChannel channel = new JobChannel(services.endpoints(mergectl.environment()).mergeService())) {
                return JobPrinter.follow(channel.stub(), id, spec.commandLine().getOut(), System.console() != null);
            }
        }
    }

    @Command(name = "cancel", description = "Cancel a queued or running job.")
    static final class Cancel implements Callable<Integer> {
        @ParentCommand
        Mergectl mergectl;
        @Spec
        CommandSpec spec;
        @Mixin
        ServiceOptions services;
        @Parameters(index = "0", paramLabel = "ID")
        String id;

        @Override
        public Integer call() throws Exception {
            try (JobChannel channel = new JobChannel(services.endpoints(mergectl.environment()).mergeService())) {
                spec.commandLine().getOut().println(JobPrinter.line(
                        channel.stub().cancelJob(JobRef.newBuilder().setId(id).build())));
            }
            spec.commandLine().getOut().flush();
            return 0;
        }
    }
}
