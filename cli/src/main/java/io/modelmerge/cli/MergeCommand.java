package io.modelmerge.cli;

import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.exec.MergeProgress;
import io.modelmerge.engine.exec.MergeResult;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.storage.blob.StorageResolver;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/** {@code mergectl merge RECIPE OUT_DIR}: runs a mergekit-style recipe locally. */
@Command(name = "merge", mixinStandardHelpOptions = true,
        description = {"Merge the models of a mergekit-style recipe into OUT_DIR (Hugging Face layout).",
                "Models are local paths, s3:// prefixes, or base_path+adapter_path for a PEFT LoRA."})
final class MergeCommand implements Callable<Integer> {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @ParentCommand
    Mergectl mergectl;

    @Parameters(index = "0", paramLabel = "RECIPE", description = "recipe YAML (mergekit format)")
    Path recipe;

    @Parameters(index = "1", paramLabel = "OUT_DIR", description = "output directory (must not exist or be empty)")
    Path outDir;

    @Option(names = "--memory", defaultValue = "2g", converter = ByteSize.class,
            description = "memory budget for work buffers and LoRA deltas (default: ${DEFAULT-VALUE})")
    long memory;

    @Option(names = "--threads", description = "worker threads (default: all cores)")
    Integer threads;

    @Option(names = "--seed", defaultValue = "0", description = "seed for random methods (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--out-shard-size", defaultValue = "5G", converter = ByteSize.class,
            description = "largest output shard (default: ${DEFAULT-VALUE})")
    long shardSize;

    @Option(names = "--strict", description = "refuse parameters the recipe's method does not take (by default they are"
            + " ignored, as mergekit ignores them, and listed as notes)")
    boolean strict;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        boolean terminal = System.console() != null && System.console().isTerminal();
        ProgressPrinter progress = new ProgressPrinter(out, terminal);
        MergeResult result;
        try (StorageResolver storage = mergectl.storage()) {
            MergeOptions options = MergeOptions.defaults().withMemory(memory).withSeed(seed).withOutShardSize(shardSize)
                    .withStorage(storage).withStrict(strict);
            if (threads != null) {
                options = options.withThreads(threads);
            }
            result = new MergeExecutor(options, progress::show, new AtomicBoolean())
                    .run(RecipeParser.parse(Files.readString(recipe)), outDir);
        }
        progress.done();
        out.printf("merged %d tensors (%,d bytes) into %s in %.1f s: %s%n", result.tensors(), result.tensorBytes(),
                result.output(), result.elapsed().toMillis() / 1000.0, String.join(", ", result.files()));
        result.notes().forEach(n -> out.println("note: " + n));
        out.flush();
        return 0;
    }

    /** A progress bar on a terminal; a plain line every few seconds otherwise. */
    private static final class ProgressPrinter {
        private final PrintWriter out;
        private final boolean terminal;
        private long lastLine;

        ProgressPrinter(PrintWriter out, boolean terminal) {
            this.out = out;
            this.terminal = terminal;
        }

        void show(MergeProgress p) {
            String eta = p.eta() == null ? "?" : p.eta().toSeconds() + "s";
            String text = String.format("%5.1f%% tensors %d/%d, %,.0f MB of %,.0f MB, %.0f MB/s, ETA %s",
                    100 * p.fraction(), p.tensorsDone(), p.tensorsTotal(), p.bytesDone() / 1e6, p.bytesTotal() / 1e6,
                    p.bytesPerSecond() / 1e6, eta);
            if (terminal) {
                int filled = (int) Math.round(p.fraction() * 30);
                out.print("\r[" + "#".repeat(filled) + " ".repeat(30 - filled) + "] " + text);
                out.flush();
            } else if (System.nanoTime() - lastLine > 2_000_000_000L || p.bytesDone() == p.bytesTotal()) {
                lastLine = System.nanoTime();
                out.println(text);
                out.flush();
            }
        }

        void done() {
            if (terminal) {
                out.println();
            }
        }
    }
}
