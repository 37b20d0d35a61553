package io.modelmerge.cli;

import io.modelmerge.engine.delta.DeltaEdit;
import io.modelmerge.engine.delta.DeltaManifest;
import io.modelmerge.engine.exec.DeltaApplication;
import io.modelmerge.engine.exec.DeltaExtraction;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.storage.blob.StorageResolver;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/** {@code mergectl delta ...}: take, edit and apply deltas Δ = θ_ft − θ_base locally. */
@Command(name = "delta", mixinStandardHelpOptions = true,
        description = "Store fine-tunes as deltas from their base (dense, sparse, 1-bit) and apply them.",
        subcommands = {DeltaCommands.Extract.class, DeltaCommands.Sparsify.class, DeltaCommands.BitDeltaCommand.class,
                DeltaCommands.LowRank.class, DeltaCommands.Extrapolate.class, DeltaCommands.Apply.class,
                DeltaCommands.Compose.class})
final class DeltaCommands {
    @ParentCommand
    Mergectl mergectl;

    /** Options every delta command takes. */
    static final class Run {
        @Option(names = "--memory", defaultValue = "2g", converter = ByteSize.class,
                description = "memory budget for work buffers (default: ${DEFAULT-VALUE})")
        long memory;

        @Option(names = "--threads", description = "worker threads (default: all cores)")
        Integer threads;

        MergeOptions options(StorageResolver storage) {
            MergeOptions options = MergeOptions.defaults().withMemory(memory).withStorage(storage);
            return threads == null ? options : options.withThreads(threads);
        }
    }

    /** What every delta command takes: the base (and the run options). */
    abstract static class OnBase implements Callable<Integer> {
        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @ParentCommand
        DeltaCommands delta;

        @Mixin
        Run run;

        @Option(names = "--base", required = true, paramLabel = "BASE", description = "the base model")
        String base;
    }

    /** A command on a base and a model (the fine-tune, or the aligned model for extrapolate), writing OUT. */
    abstract static class FromBase extends OnBase {
        @Option(names = "--model", required = true, paramLabel = "FT", description = "the fine-tune")
        String model;

        @Parameters(index = "0", paramLabel = "OUT", description = "output directory (must not exist or be empty)")
        Path out;
    }

    /** Taking a delta as a {@link DeltaEdit} says. */
    abstract static class Take extends FromBase {
        abstract DeltaEdit edit();

        @Override
        public Integer call() throws Exception {
            DeltaManifest m;
            try (StorageResolver storage = delta.mergectl.storage()) {
                m = new DeltaExtraction(run.options(storage)).run(base, model, edit(), out);
            }
            PrintWriter out = spec.commandLine().getOut();
            out.printf(Locale.ROOT, "%s: %d tensors, %,d bytes for the fine-tune's %,d (%.2fx smaller)%n", this.out,
                    m.tensors().size(), m.deltaBytes(), m.fineTuneBytes(), m.compressionRatio());
            m.worst().ifPresent(w -> out.printf(Locale.ROOT,
                    "worst reconstruction: %s, relative Frobenius error %.3g against the fine-tune%n", w.name(),
                    w.relativeError()));
            out.flush();
            return 0;
        }
    }

    @Command(name = "extract", mixinStandardHelpOptions = true,
            description = "Store FT as its dense delta from BASE (apply gives FT back bit for bit).")
    static final class Extract extends Take {
        @Override
        DeltaEdit edit() {
            return new DeltaEdit.Dense();
        }
    }

    @Command(name = "sparsify", mixinStandardHelpOptions = true,
            description = "Store FT's delta sparse: DARE (random drop) or by magnitude.")
    static final class Sparsify extends Take {
        @Option(names = "--method", defaultValue = "dare", description = "dare or magnitude (default: ${DEFAULT-VALUE})")
        String method;

        @Option(names = "--p", defaultValue = "0.9", description = "DARE: drop probability in [0, 1) (default: ${DEFAULT-VALUE})")
        double p;

        @Option(names = "--rescale", defaultValue = "inverse",
                description = "DARE: inverse (1/(1-p), the paper), l1 (mergekit) or none (default: ${DEFAULT-VALUE})")
        String rescale;

        @Option(names = "--seed", defaultValue = "0", description = "DARE: mask seed (default: ${DEFAULT-VALUE})")
        long seed;

        @Option(names = "--density", defaultValue = "0.1",
                description = "magnitude: fraction kept (default: ${DEFAULT-VALUE})")
        double density;

        @Option(names = "--scope", defaultValue = "tensor", description = "magnitude: tensor or row (default: ${DEFAULT-VALUE})")
        String scope;

        @Override
        DeltaEdit edit() {
            return switch (method) {
                case "dare" -> new DeltaEdit.Dare(p, DeltaEdit.DareRescale.valueOf(rescale.toUpperCase(Locale.ROOT)), seed);
                case "magnitude" -> new DeltaEdit.Magnitude(density, DeltaEdit.Scope.valueOf(scope.toUpperCase(Locale.ROOT)));
                default -> throw new IllegalArgumentException("--method must be dare or magnitude, got '" + method + "'");
            };
        }
    }

    @Command(name = "bitdelta", mixinStandardHelpOptions = true,
            description = {"Store FT's delta as alpha * sign(delta) (BitDelta, data-free scales).",
                    "Scale distillation, which needs data and a GPU, is not done."})
    static final class BitDeltaCommand extends Take {
        @Option(names = "--scope", defaultValue = "tensor", description = "one alpha per tensor or per row (default: ${DEFAULT-VALUE})")
        String scope;

        @Mixin
        TensorFilter tensors;

        @Override
        DeltaEdit edit() {
            return new DeltaEdit.BitDelta(DeltaEdit.Scope.valueOf(scope.toUpperCase(Locale.ROOT)), tensors.include(),
                    tensors.exclude());
        }
    }

    @Command(name = "lowrank", mixinStandardHelpOptions = true,
            description = {"Write FT's delta as a PEFT LoRA adapter of BASE (truncated randomized SVD per 2-D tensor,",
                    "as mergekit's extract_lora); changed tensors that are not low-ranked go to modules_to_save."})
    static final class LowRank extends FromBase {
        @Option(names = "--max-rank", defaultValue = "32", description = "largest rank (default: ${DEFAULT-VALUE})")
        int maxRank;

        @Option(names = "--sv-epsilon", defaultValue = "0", description = "drop singular values at or below this")
        double svEpsilon;

        @Option(names = "--energy", defaultValue = "0",
                description = "smallest rank keeping this fraction of the squared Frobenius norm (0: off)")
        double energy;

        @Mixin
        TensorFilter tensors;

        @Override
        public Integer call() throws Exception {
            io.modelmerge.engine.exec.DeltaLowRank.Result result;
            try (StorageResolver storage = delta.mergectl.storage()) {
                result = new io.modelmerge.engine.exec.DeltaLowRank(run.options(storage)).run(base, model,
                        new io.modelmerge.engine.exec.DeltaLowRank.Spec(maxRank, svEpsilon, energy, tensors.include(),
                                tensors.exclude()), out);
            }
            PrintWriter printer = spec.commandLine().getOut();
            printer.printf("%s: LoRA of %d modules, ranks %s; saved whole: %s%n", out, result.ranks().size(),
                    new java.util.TreeSet<>(result.ranks().values()), result.savedWhole());
            printer.flush();
            return 0;
        }
    }

    @Command(name = "extrapolate", mixinStandardHelpOptions = true,
            description = "ExPO: write FT + alpha * (FT - BASE) in OUT, BASE the SFT model and FT the aligned one"
                    + " (the extrapolate merge method).")
    static final class Extrapolate extends FromBase {
        @Option(names = "--alpha", required = true, description = "how far to extrapolate")
        double alpha;

        @Option(names = "--filter", description = "extrapolate only tensors whose names contain one of these"
                + " (mergekit's filter); the others are the aligned model's")
        List<String> filters;

        @Override
        public Integer call() throws Exception {
            String value = String.valueOf(alpha);
            if (filters != null && !filters.isEmpty()) {
                StringBuilder steps = new StringBuilder("[");
                for (String f : filters) {
                    steps.append("{filter: ").append(quoted(f)).append(", value: ").append(alpha).append("}, ");
                }
                value = steps.append("{value: 0}]").toString();
            }
            String yaml = "merge_method: extrapolate\nbase_model: " + quoted(base) + "\nmodels:\n  - model: "
                    + quoted(model) + "\nparameters:\n  alpha: " + value + "\n";
            io.modelmerge.engine.exec.MergeResult result;
            try (StorageResolver storage = delta.mergectl.storage()) {
                result = new io.modelmerge.engine.exec.MergeExecutor(run.options(storage), p -> { },
                        new java.util.concurrent.atomic.AtomicBoolean())
                        .run(io.modelmerge.engine.recipe.RecipeParser.parse(yaml), out);
            }
            spec.commandLine().getOut().printf("extrapolated %d tensors into %s%n", result.tensors(), out);
            spec.commandLine().getOut().flush();
            return 0;
        }

        private static String quoted(String s) {
            return "'" + s.replace("'", "''") + "'";
        }
    }

    /** What applying deltas needs: the base, the deltas with their scales and where to write. */
    abstract static class Combine extends OnBase {
        @Option(names = "--lambda", split = ",", description = "scale of each delta, in order (default: 1 each)")
        List<Double> lambdas;

        @Parameters(arity = "2..*", paramLabel = "DELTA... OUT", description = "the deltas, then the output directory")
        List<String> args;

        List<DeltaApplication.Part> parts() {
            List<DeltaApplication.Part> parts = new ArrayList<>();
            List<String> deltas = args.subList(0, args.size() - 1);
            if (lambdas != null && lambdas.size() != deltas.size()) {
                throw new IllegalArgumentException("--lambda gives " + lambdas.size() + " scales for " + deltas.size()
                        + " deltas");
            }
            for (int i = 0; i < deltas.size(); i++) {
                parts.add(new DeltaApplication.Part(deltas.get(i), lambdas == null ? 1 : lambdas.get(i)));
            }
            return parts;
        }

        Path out() {
            return Path.of(args.getLast());
        }
    }

    @Command(name = "apply", mixinStandardHelpOptions = true,
            description = "Write BASE + sum of lambda * DELTA as a checkpoint in OUT.")
    static final class Apply extends Combine {
        @Override
        public Integer call() throws Exception {
            int tensors;
            try (StorageResolver storage = delta.mergectl.storage()) {
                tensors = new DeltaApplication(run.options(storage)).apply(base, parts(), out());
            }
            spec.commandLine().getOut().printf("applied %d delta(s) to %s: %d tensors in %s%n", parts().size(), base,
                    tensors, out());
            spec.commandLine().getOut().flush();
            return 0;
        }
    }

    @Command(name = "compose", mixinStandardHelpOptions = true,
            description = "Write the sum of lambda * DELTA as one dense delta of BASE in OUT.")
    static final class Compose extends Combine {
        @Override
        public Integer call() throws Exception {
            try (StorageResolver storage = delta.mergectl.storage()) {
                new DeltaApplication(run.options(storage)).compose(base, parts(), out());
            }
            spec.commandLine().getOut().printf("composed %d deltas into %s%n", parts().size(), out());
            spec.commandLine().getOut().flush();
            return 0;
        }
    }
}
