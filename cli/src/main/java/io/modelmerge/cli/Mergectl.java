package io.modelmerge.cli;

import io.modelmerge.storage.blob.S3Settings;
import io.modelmerge.storage.blob.StorageResolver;
import java.io.PrintWriter;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;
import picocli.CommandLine.Command;
import picocli.CommandLine;

/** The modelmerge command line. */
@Command(name = "mergectl", mixinStandardHelpOptions = true, version = "mergectl 0.1.0",
        description = "Inspect, merge and edit fine-tuned model checkpoints.",
        subcommands = {InspectCommand.class, MergeCommand.class, BenchCommand.class, GenerateCommand.class, SubmitCommand.class,
                JobsCommand.List.class, JobsCommand.Watch.class, JobsCommand.Cancel.class, RegistryCommands.Models.class,
                RegistryCommands.Versions.class, RegistryCommands.Show.class, RegistryCommands.Register.class,
                DeltaCommands.class, TokenCommands.class, EvaluatorCommands.class,
                CommandLine.HelpCommand.class})
public final class Mergectl {
    private final Map<String, String> environment;

    Mergectl(Map<String, String> environment) {
        this.environment = Map.copyOf(environment);
    }

    Map<String, String> environment() {
        return environment;
    }

    /**
     * Storage for one command: local paths anywhere, S3 from the standard AWS variables of mergectl's
     * environment; the command closes it.
     */
    StorageResolver storage() {
        return StorageResolver.unconfined(S3Settings.fromEnvironment(environment));
    }

    // gRPC logs its transport's start-up through java.util.logging at INFO; a CLI shows only what went wrong.
    // Held in a field: java.util.logging keeps loggers weakly, and would forget the level.
    private static final Logger GRPC_LOG = Logger.getLogger("io.grpc");

    /** Exit code for input that is wrong (a malformed file, a bad path); the message says what and where. */
    static final int BAD_INPUT = 2;

    public static void main(String[] args) {
        GRPC_LOG.setLevel(Level.WARNING);
        System.exit(run(System.getenv(), new PrintWriter(System.out, true), new PrintWriter(System.err, true), args));
    }

    /** Runs mergectl with {@code args} in {@code environment}, printing to {@code out} and {@code err}. */
    static int run(Map<String, String> environment, PrintWriter out, PrintWriter err, String... args) {
        CommandLine cli = new CommandLine(new Mergectl(environment));
        cli.setOut(out);
        cli.setErr(err);
        // Failures are reported as one line naming the file and the problem, never as a stack trace.
        cli.setExecutionExceptionHandler((e, command, parsed) -> {
            command.getErr().println("mergectl: " + describe(e));
            return BAD_INPUT;
        });
        return cli.execute(args);
    }

    private static String describe(Exception e) {
        String message = e.getMessage();
        if (message == null || message.isBlank()) {
            return e.getClass().getSimpleName();
        }
        return e instanceof java.nio.file.NoSuchFileException ? message + ": no such file or directory" : message;
    }
}
