package io.modelmerge.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.method.MergeMethods;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.blob.LocalDirectories;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code mergectl bench}: merge speed as a fraction of this machine's I/O floor, measured in the same run.
 * The floor is the time to read every input file once plus the time to write (and sync) one file of the
 * output's size; {@code ratio} = floor_s / merge_s (1.0: the merge costs no more than moving its bytes).
 * {@code peak_anon_MB} is the peak RssAnon during the merge: memory the process owns, not the page cache of
 * the mapped inputs.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmark merge methods on synthetic Llama-shaped checkpoints; one JSON line per method.")
final class BenchCommand implements Callable<Integer> {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--size", defaultValue = "1G", converter = ByteSize.class, description = "size of each input model")
    long size;

    @Option(names = "--models", defaultValue = "3", description = "input models; for base-model methods the first is the base")
    int models;

    @Option(names = "--dtype", defaultValue = "bf16", description = "bf16, f16 or f32 (or their PyTorch names)")
    String dtype;

    @Option(names = "--method", split = ",", defaultValue = "linear,task_arithmetic,ties,dare_ties",
            description = "methods to run (default: ${DEFAULT-VALUE})")
    List<String> methods;

    @Option(names = "--memory", defaultValue = "2g", converter = ByteSize.class, description = "merge memory budget")
    long memory;

    @Option(names = "--threads", description = "worker threads (default: all cores)")
    Integer threads;

    @Option(names = "--repeat", defaultValue = "2",
            description = "runs of each floor and merge; the best of each is reported (default: ${DEFAULT-VALUE})")
    int repeat;

    @Option(names = "--shape", defaultValue = "auto",
            description = "auto (a Llama of about --size) or llama-7b (Llama-2-7B's shapes; --size is ignored)")
    String shape;

    @Option(names = "--shard-size", converter = ByteSize.class,
            description = "largest shard of each input, e.g. 10G as the Hub shards (default: one file)")
    Long shardSize;

    @Option(names = "--dir", description = "where to put the synthetic checkpoints (default: a temporary directory)")
    Path dir;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        DType type = RecipeParser.dtype(dtype.toLowerCase());
        if (models < 2) {
            throw new IllegalArgumentException("--models must be at least 2, got " + models);
        }
        Path work = dir != null ? Files.createDirectories(dir) : Files.createTempDirectory("mergectl-bench");
        try {
            List<TensorSpec> specs = switch (shape) {
                case "auto" -> SyntheticCheckpoints.llamaOfSize(size, type);
                case "llama-7b" -> SyntheticCheckpoints.llama7b(type);
                default -> throw new IllegalArgumentException("--shape must be auto or llama-7b, got '" + shape + "'");
            };
            List<Path> inputs = new ArrayList<>();
            for (int m = 0; m < models; m++) {
                Path model = work.resolve("model-" + m);
                // config.json is written last: a model interrupted while being written is written again.
                if (!Files.exists(model.resolve("config.json"))) {
                    SyntheticCheckpoints.write(model, specs, SyntheticCheckpoints.fineTune(m),
                            shardSize == null ? Long.MAX_VALUE : shardSize);
                }
                inputs.add(model);
            }
            long outputBytes = specs.stream().mapToLong(TensorSpec::byteLength).sum();
            MergeOptions options = MergeOptions.defaults().withMemory(memory);
            if (threads != null) {
                options = options.withThreads(threads);
            }
            for (String method : methods) {
                if (method.startsWith("delta-")) {
                    out.println(new ObjectMapper().writeValueAsString(deltaBench(method, inputs, work, options, type)));
                    out.flush();
                    continue;
                }
                // Both timings start with no dirty pages pending, so neither pays for the other's write-back.
                // Floor and merge alternate, each run starting with no dirty pages pending; the best run of
                // each is reported, so the ratio compares the machine's best case with the merge's.
                Floor best = null;
                double seconds = Double.MAX_VALUE;
                double cpuSeconds = Double.MAX_VALUE;
                long peak = 0;
                Path output = work.resolve("out-" + method);
                BenchRecipe recipe = BenchRecipe.of(MergeMethods.named(method), inputs);
                // The floor reads what the merge reads (slerp: the base and one fine-tune; passthrough: one model).
                List<Path> used = recipe.inputs();
                long usedBytes = weightBytes(used);
                for (int run = 0; run < repeat; run++) {
                    syncFilesystems();
                    Floor floor = floor(used, work.resolve("floor.bin"), outputBytes);
                    best = best == null || floor.total() < best.total() ? floor : best;
                    LocalDirectories.delete(output);
                    syncFilesystems();
                    System.gc();
                    RssSampler sampler = RssSampler.start();
                    long cpuStart = processCpuNanos();
                    long start = System.nanoTime();
                    new MergeExecutor(options, p -> { }, new AtomicBoolean())
                            .run(RecipeParser.parse(recipe.yaml()), output);
                    seconds = Math.min(seconds, (System.nanoTime() - start) / 1e9);
                    cpuSeconds = Math.min(cpuSeconds, (processCpuNanos() - cpuStart) / 1e9);
                    peak = Math.max(peak, sampler.stop());
                    LocalDirectories.delete(output);
                }
                // Times to the microsecond, and the ratio of exactly the times printed: a reader (or a test)
                // recomputing it from the line gets the same figure.
                double mergeSeconds = round(seconds, 6);
                double floorSeconds = round(best.total(), 6);
                Map<String, Object> line = new LinkedHashMap<>();
                line.put("method", method);
                line.put("input_GB", round(usedBytes / 1e9, 3));
                line.put("merge_s", mergeSeconds);
                line.put("merge_cpu_s", round(cpuSeconds, 3));
                line.put("floor_s", floorSeconds);
                line.put("floor_read_s", round(best.readSeconds(), 6));
                line.put("floor_write_s", round(best.writeSeconds(), 6));
                line.put("ratio", ratio(floorSeconds, mergeSeconds));
                line.put("peak_anon_MB", round(peak / 1e6, 1));
                line.put("threads", options.threads());
                line.put("dtype", type.name());
                out.println(new ObjectMapper().writeValueAsString(line));
                out.flush();
            }
        } finally {
            if (dir == null) {
                LocalDirectories.delete(work);
            }
        }
        return 0;
    }

    /**
     * A delta operation of model-1 from model-0 ({@code delta-extract}, {@code delta-dare}, {@code delta-magnitude},
     * {@code delta-bitdelta}), against the floor of reading both and writing what it wrote; or
     * {@code delta-lowrank}: the time to factor one 4096 × 4096 delta at rank 64.
     */
    private Map<String, Object> deltaBench(String method, List<Path> inputs, Path work, MergeOptions options, DType type)
            throws Exception {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("method", method);
        if (method.equals("delta-lowrank")) {
            java.util.Random random = new java.util.Random(1);
            float[] values = new float[4096 * 4096];
            for (int i = 0; i < values.length; i++) {
                values[i] = (float) random.nextGaussian();
            }
            double best = Double.MAX_VALUE;
            for (int run = 0; run < repeat; run++) {
                long start = System.nanoTime();
                io.modelmerge.engine.exec.DeltaLowRank.factor("bench", new io.modelmerge.engine.compute.Matrix(4096, 4096,
                        values), io.modelmerge.engine.exec.DeltaLowRank.Spec.ofRank(64), options.backend(), "bench");
                best = Math.min(best, (System.nanoTime() - start) / 1e9);
            }
            line.put("seconds_per_4096x4096_rank64", round(best, 6));
            line.put("threads", options.threads());
            return line;
        }
        io.modelmerge.engine.delta.DeltaEdit edit = switch (method) {
            case "delta-extract" -> new io.modelmerge.engine.delta.DeltaEdit.Dense();
            case "delta-dare" -> new io.modelmerge.engine.delta.DeltaEdit.Dare(0.9,
                    io.modelmerge.engine.delta.DeltaEdit.DareRescale.INVERSE, 0);
            case "delta-magnitude" -> new io.modelmerge.engine.delta.DeltaEdit.Magnitude(0.1,
                    io.modelmerge.engine.delta.DeltaEdit.Scope.TENSOR);
            case "delta-bitdelta" -> io.modelmerge.engine.delta.DeltaEdit.BitDelta.defaults();
            default -> throw new IllegalArgumentException("unknown delta bench '" + method + "'");
        };
        List<Path> used = inputs.subList(0, 2);
        long usedBytes = weightBytes(used);
        Path output = work.resolve("out-" + method);
        double seconds = Double.MAX_VALUE;
        double cpuSeconds = Double.MAX_VALUE;
        Floor best = null;
        long peak = 0;
        io.modelmerge.engine.delta.DeltaManifest manifest = null;
        for (int run = 0; run < repeat; run++) {
            LocalDirectories.delete(output);
            syncFilesystems();
            System.gc();
            RssSampler sampler = RssSampler.start();
            long cpuStart = processCpuNanos();
            long start = System.nanoTime();
            manifest = new io.modelmerge.engine.exec.DeltaExtraction(options).run(used.get(0).toString(),
                    used.get(1).toString(), edit, output);
            seconds = Math.min(seconds, (System.nanoTime() - start) / 1e9);
            cpuSeconds = Math.min(cpuSeconds, (processCpuNanos() - cpuStart) / 1e9);
            peak = Math.max(peak, sampler.stop());
            LocalDirectories.delete(output);
            syncFilesystems();
            Floor floor = floor(used, work.resolve("floor.bin"), manifest.deltaBytes());
            best = best == null || floor.total() < best.total() ? floor : best;
        }
        double opSeconds = round(seconds, 6);
        double floorSeconds = round(best.total(), 6);
        line.put("input_GB", round(usedBytes / 1e9, 3));
        line.put("output_GB", round(manifest.deltaBytes() / 1e9, 3));
        line.put("compression", round(manifest.compressionRatio(), 3));
        line.put("worst_relative_error", manifest.worst().map(w -> w.relativeError()).orElse(0.0));
        line.put("merge_s", opSeconds);
        line.put("merge_cpu_s", round(cpuSeconds, 3));
        line.put("floor_s", floorSeconds);
        line.put("floor_read_s", round(best.readSeconds(), 6));
        line.put("floor_write_s", round(best.writeSeconds(), 6));
        line.put("ratio", ratio(floorSeconds, opSeconds));
        line.put("peak_anon_MB", round(peak / 1e6, 1));
        line.put("threads", options.threads());
        line.put("dtype", type.name());
        return line;
    }

    /** CPU time of every thread of this process so far (the merge's workers, its writer, the JIT and GC). */
    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
                .getOperatingSystemMXBean()).getProcessCpuTime();
    }

    /** floor_s / merge_s to 3 decimals, as printed. */
    static double ratio(double floorSeconds, double mergeSeconds) {
        return round(floorSeconds / mergeSeconds, 3);
    }

    private static double round(double value, int digits) {
        double scale = Math.pow(10, digits);
        return Math.round(value * scale) / scale;
    }

    private static void syncFilesystems() throws IOException, InterruptedException {
        Process sync = new ProcessBuilder("sync").inheritIO().start();
        if (sync.waitFor() != 0) {
            throw new IOException("sync failed with exit code " + sync.exitValue());
        }
    }

    /** The I/O floor: reading every input once, and writing (and syncing) one file of the output's size. */
    private record Floor(double readSeconds, double writeSeconds) {
        double total() {
            return readSeconds + writeSeconds;
        }
    }

    private static Floor floor(List<Path> inputs, Path scratch, long outputBytes) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocateDirect(16 << 20);
        long start = System.nanoTime();
        for (Path file : weightFiles(inputs)) {
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
                while (channel.read(buffer.clear()) > 0) {
                    // reading is the work
                }
            }
        }
        double read = (System.nanoTime() - start) / 1e9;
        start = System.nanoTime();
        try (FileChannel channel = FileChannel.open(scratch, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            for (long written = 0; written < outputBytes; ) {
                buffer.clear().limit((int) Math.min(buffer.capacity(), outputBytes - written));
                written += channel.write(buffer);
            }
            channel.force(true);
        }
        double write = (System.nanoTime() - start) / 1e9;
        Files.delete(scratch);
        return new Floor(read, write);
    }

    /** The safetensors files of {@code models}: one each, or a sharded model's shards. */
    private static List<Path> weightFiles(List<Path> models) throws IOException {
        List<Path> files = new ArrayList<>();
        for (Path model : models) {
            try (Stream<Path> list = Files.list(model)) {
                list.filter(f -> f.getFileName().toString().endsWith(".safetensors")).sorted().forEach(files::add);
            }
        }
        return files;
    }

    private static long weightBytes(List<Path> models) throws IOException {
        long bytes = 0;
        for (Path file : weightFiles(models)) {
            bytes += Files.size(file);
        }
        return bytes;
    }

    /** Samples RssAnon from /proc/self/status every 10 ms and keeps the peak. */
    private static final class RssSampler {
        private final AtomicLong peak = new AtomicLong();
        private final AtomicBoolean running = new AtomicBoolean(true);
        private Thread thread;

        static RssSampler start() {
            RssSampler sampler = new RssSampler();
            sampler.thread = Thread.ofPlatform().daemon().start(() -> {
                while (sampler.running.get()) {
                    sampler.peak.accumulateAndGet(rssAnonBytes(), Math::max);
                    try {
                        Thread.sleep(10);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
            return sampler;
        }

        long stop() throws InterruptedException {
            running.set(false);
            thread.join();
            return Math.max(peak.get(), rssAnonBytes());
        }

        static long rssAnonBytes() {
            try {
                for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                    if (line.startsWith("RssAnon:")) {
                        return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
                    }
                }
            } catch (IOException | NumberFormatException e) {
                return 0;
            }
            return 0;
        }
    }
}
