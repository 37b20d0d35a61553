package io.modelmerge.cli;

import io.modelmerge.proto.v1.Evaluator;
import io.modelmerge.proto.v1.ListEvaluatorsRequest;
import io.modelmerge.proto.v1.MergeServiceGrpc;
import io.modelmerge.proto.v1.RegisterEvaluatorRequest;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code mergectl evaluator ...}: the evaluators greedy_soup and evolve jobs score candidates with. */
@Command(name = "evaluator", mixinStandardHelpOptions = true,
        description = "Register and list the evaluators that searches (greedy_soup, evolve) score candidates with.",
        subcommands = {EvaluatorCommands.Register.class, EvaluatorCommands.ListEvaluators.class})
final class EvaluatorCommands {
    private EvaluatorCommands() {
    }

    @Command(name = "register", description = "Register NS/NAME@VERSION at a URL (admin on the namespace); a"
            + " registered name@version gets the new URL and secret.")
    static final class Register extends ServiceCommand.JobCommand {
        @Parameters(index = "0", paramLabel = "NS/NAME@VERSION")
        String ref;

        @Option(names = "--url", required = true, description = "Where candidates are POSTed (http or https).")
        String url;

        @Option(names = "--secret-file", required = true, paramLabel = "FILE",
                description = "A file holding the secret requests are signed with (16 characters at least).")
        Path secretFile;

        @Override
        int run(MergeServiceGrpc.MergeServiceBlockingStub stub, PrintWriter out) throws Exception {
            int at = ref.lastIndexOf('@');
            if (at < 0) {
                out.println("error: '" + ref + "' names no version (ns/name@version)");
                return 2;
            }
            String secret = Files.readString(secretFile, StandardCharsets.UTF_8).strip();
            Evaluator e = stub.registerEvaluator(RegisterEvaluatorRequest.newBuilder().setEvaluator(Evaluator.newBuilder()
                    .setName(ref.substring(0, at)).setVersion(ref.substring(at + 1)).setUrl(url)).setSecret(secret)
                    .build());
            out.println(line(e));
            return 0;
        }
    }

    @Command(name = "list", description = "The evaluators of the namespaces this token may read.")
    static final class ListEvaluators extends ServiceCommand.JobCommand {
        @Override
        int run(MergeServiceGrpc.MergeServiceBlockingStub stub, PrintWriter out) {
            stub.listEvaluators(ListEvaluatorsRequest.getDefaultInstance()).getEvaluatorsList()
                    .forEach(e -> out.println(line(e)));
            return 0;
        }
    }

    private static String line(Evaluator e) {
        return String.format("%-40s  %-40s  registered by %s at %s", e.getName() + "@" + e.getVersion(), e.getUrl(),
                e.getRegisteredBy(), Instant.ofEpochSecond(e.getRegisteredAt().getSeconds()));
    }
}
