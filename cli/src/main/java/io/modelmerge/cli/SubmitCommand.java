package io.modelmerge.cli;

import io.modelmerge.proto.v1.Job;
import io.modelmerge.proto.v1.MergeServiceGrpc;
import io.modelmerge.proto.v1.Options;
import io.modelmerge.proto.v1.Output;
import io.modelmerge.proto.v1.SubmitMergeRequest;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code mergectl submit}: send a recipe to the merge service as a job, optionally waiting for its end. */
@Command(name = "submit", description = "Submit a mergekit recipe (inputs as registry refs or URIs) as a merge job.")
final class SubmitCommand extends ServiceCommand.JobCommand {
    @Parameters(index = "0", paramLabel = "RECIPE", description = "The recipe, mergekit YAML.")
    Path recipe;

    @Option(names = "--output", required = true, paramLabel = "NS/NAME", description = "Model the result becomes a version of.")
    String output;

    @Option(names = "--alias", description = "Alias to move to the new version on success.")
    String alias = "";

    @Option(names = "--tag", paramLabel = "KEY=VALUE", description = "Tag of the new version (repeatable).")
    Map<String, String> tags = new LinkedHashMap<>();

    @Option(names = "--description", description = "Description of the output model.")
    String description = "";

    @Option(names = "--seed", description = "Seed of random methods (DARE). Default: 0.")
    long seed;

    @Option(names = "--memory", converter = ByteSize.class, description = "Memory budget of the merge, e.g. 4g (default: the service's).")
    long memory;

    @Option(names = "--shard-size", converter = ByteSize.class, description = "Largest output shard, e.g. 2G"
            + " (default: 5 GB); a merge of several shards is split over the service's replicas.")
    long shardSize;

    @Option(names = "--out-dtype", description = "Output dtype, overriding the recipe's (e.g. bfloat16).")
    String outDtype = "";

    @Option(names = "--priority", description = "Higher runs first. Default: 0.")
    int priority;

    @Option(names = "--strict", description = "Refuse parameters the recipe's method does not take (by default they are"
            + " ignored, as mergekit ignores them, and listed in the job's notes).")
    boolean strict;

    @Option(names = "--idempotency-key", description = "Submitting again with the same key returns the same job.")
    String idempotencyKey = "";

    @Option(names = "--wait", description = "Follow the job with a progress bar; exit 0 on success, 1 on failure, 3 if cancelled.")
    boolean wait;

    @Override
    int run(MergeServiceGrpc.MergeServiceBlockingStub stub, PrintWriter out) throws Exception {
        SubmitMergeRequest request = SubmitMergeRequest.newBuilder()
                .setRecipeYaml(Files.readString(recipe))
                .setOutput(Output.newBuilder().setModel(output).setAlias(alias).putAllTags(tags).setDescription(description))
                .setOptions(Options.newBuilder().setSeed(seed).setMemoryBytes(memory).setShardSizeBytes(shardSize)
                        .setOutDtype(outDtype).setPriority(priority).setStrict(strict))
                .setIdempotencyKey(idempotencyKey)
                .build();
        Job job = stub.submitMerge(request);
        out.println("job " + job.getId() + " " + job.getState());
        job.getPinnedInputsMap().forEach((ref, pinned) -> out.println("  input " + ref + " -> " + pinned));
        out.flush();
        return wait ? JobPrinter.follow(stub, job.getId(), out, System.console() != null) : 0;
    }
}
