package io.modelmerge.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.modelmerge.storage.blob.Located;
import io.modelmerge.storage.blob.StorageResolver;
import io.modelmerge.storage.checkpoint.Checkpoint;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/** {@code mergectl inspect PATH}: what a checkpoint holds, read from its headers only. */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = {"Summarise a checkpoint: format, tensors, dtypes, parameters, bytes, metadata.",
                "PATH is a .safetensors file, a checkpoint or PEFT adapter directory, or an s3://bucket/prefix.",
                "S3 is reached with AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY."})
final class InspectCommand implements Callable<Integer> {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @ParentCommand
    Mergectl mergectl;

    @Parameters(paramLabel = "PATH", description = "file, directory or s3:// prefix")
    String path;

    @Option(names = "--json", description = "print the summary as JSON")
    boolean json;

    @Option(names = "--tensors", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "list every tensor (default: ${DEFAULT-VALUE})")
    boolean listTensors;

    @Override
    public Integer call() throws Exception {
        try (StorageResolver storage = mergectl.storage()) {
            Located located = storage.locate(path);
            try (var store = located.store()) {
                Checkpoint checkpoint = located.file() ? Checkpoint.openFile(store, located.key())
                        : Checkpoint.open(store, located.key());
                CheckpointSummary summary = CheckpointSummary.of(checkpoint);
                PrintWriter out = spec.commandLine().getOut();
                if (json) {
                    out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
                            .writeValueAsString(summary.toJson(listTensors)));
                } else {
                    summary.printText(out, listTensors);
                }
                out.flush();
            }
            return 0;
        }
    }
}
