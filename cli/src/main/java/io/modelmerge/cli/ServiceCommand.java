package io.modelmerge.cli;

import io.modelmerge.proto.v1.MergeServiceGrpc;
import io.modelmerge.registry.client.RegistryClient;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** What every command that talks to a service has: mergectl's environment, its output, the services' addresses. */
abstract class ServiceCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;
    @Mixin
    ServiceOptions services;

    Endpoints endpoints() throws IOException {
        return services.endpoints(environment());
    }

    String token() throws IOException {
        return services.token(environment());
    }

    /** mergectl's environment, from the root command however deep this one is (mergectl token create ...). */
    private Map<String, String> environment() {
        return ((Mergectl) spec.root().userObject()).environment();
    }

    /** A command of the merge service: runs with a channel to it, open for the command's length. */
    abstract static class JobCommand extends ServiceCommand {
        @Override
        public Integer call() throws Exception {
            PrintWriter out = spec.commandLine().getOut();
            try (JobChannel channel = new JobChannel(endpoints().mergeService(), token())) {
                return run(channel.stub(), out);
            } finally {
                out.flush();
            }
        }

        /** The command's work; returns its exit code. */
        abstract int run(MergeServiceGrpc.MergeServiceBlockingStub stub, PrintWriter out) throws Exception;
    }

    /** A command of the registry. */
    abstract static class RegistryCommand extends ServiceCommand {
        @Override
        public Integer call() throws Exception {
            PrintWriter out = spec.commandLine().getOut();
            run(new RegistryClient(endpoints().registry(), token()), out);
            out.flush();
            return 0;
        }

        abstract void run(RegistryClient registry, PrintWriter out) throws IOException;
    }
}
