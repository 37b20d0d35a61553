package io.modelmerge.engine.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.delta.DeltaEdit;
import io.modelmerge.engine.delta.DeltaManifest;
import io.modelmerge.storage.blob.BlobCache;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.Tensor;
import io.modelmerge.storage.safetensors.TensorInfo;
import io.modelmerge.storage.safetensors.TensorSpec;
import io.modelmerge.storage.safetensors.SafetensorsWriter;
import io.modelmerge.storage.testing.Fixtures;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Each delta format's quality on a model trained here on real data (../shared/fixtures/data/digits): a
 * 64-32-10 MLP trained on the digits 0–4 (the base), then on all ten (the fine-tune); each format's
 * reconstruction is scored on held-out digits beside the fine-tune's own accuracy, and the table printed.
 */
class DeltaQualityTest {
    private static final int HIDDEN = 32;

    @TempDir
    Path dir;

    /** 1797 rows of 64 pixels (scaled to [0, 1]) and a label. */
    private record Digits(float[][] x, int[] y) {
        static Digits load() throws Exception {
            Path csv = Fixtures.real().getParent().resolve("data/digits/digits.csv.gz");
            List<float[]> xs = new ArrayList<>();
            List<Integer> ys = new ArrayList<>();
            try (BufferedReader in = new BufferedReader(new InputStreamReader(new GZIPInputStream(Files.newInputStream(csv))))) {
                for (String line; (line = in.readLine()) != null; ) {
                    String[] cells = line.split(",");
                    float[] pixels = new float[64];
                    for (int i = 0; i < 64; i++) {
                        pixels[i] = Float.parseFloat(cells[i]) / 16f;
                    }
                    xs.add(pixels);
                    ys.add((int) Float.parseFloat(cells[64]));
                }
            }
            return new Digits(xs.toArray(float[][]::new), ys.stream().mapToInt(Integer::intValue).toArray());
        }
    }

    /** The MLP's weights by name: fc1 [32, 64], fc2 [10, 32], and their biases. */
    private static Map<String, float[]> init(long seed) {
        Random random = new Random(seed);
        Map<String, float[]> w = new LinkedHashMap<>();
        w.put("fc1.weight", gaussian(random, HIDDEN * 64, 1 / Math.sqrt(64)));
        w.put("fc1.bias", new float[HIDDEN]);
        w.put("fc2.weight", gaussian(random, 10 * HIDDEN, 1 / Math.sqrt(HIDDEN)));
        w.put("fc2.bias", new float[10]);
        return w;
    }

    private static float[] gaussian(Random random, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (random.nextGaussian() * scale);
        }
        return v;
    }

    /** Logits of one sample. */
    private static float[] forward(Map<String, float[]> w, float[] x, float[] hidden) {
        float[] w1 = w.get("fc1.weight");
        float[] b1 = w.get("fc1.bias");
        float[] w2 = w.get("fc2.weight");
        float[] b2 = w.get("fc2.bias");
        for (int h = 0; h < HIDDEN; h++) {
            float s = b1[h];
            for (int i = 0; i < 64; i++) {
                s += w1[h * 64 + i] * x[i];
            }
            hidden[h] = Math.max(0, s);
        }
        float[] logits = new float[10];
        for (int c = 0; c < 10; c++) {
            float s = b2[c];
            for (int h = 0; h < HIDDEN; h++) {
                s += w2[c * HIDDEN + h] * hidden[h];
            }
            logits[c] = s;
        }
        return logits;
    }

    /** Full-batch gradient descent on softmax cross-entropy over the rows {@code use} accepts. */
    private static void train(Map<String, float[]> w, Digits data, int rows, java.util.function.IntPredicate use, int epochs,
                              float rate) {
        float[] hidden = new float[HIDDEN];
        for (int epoch = 0; epoch < epochs; epoch++) {
            Map<String, float[]> grad = new LinkedHashMap<>();
            w.forEach((k, v) -> grad.put(k, new float[v.length]));
            int count = 0;
            for (int r = 0; r < rows; r++) {
                if (!use.test(data.y()[r])) {
                    continue;
                }
                count++;
                float[] x = data.x()[r];
                float[] logits = forward(w, x, hidden);
                float max = Float.NEGATIVE_INFINITY;
                for (float l : logits) {
                    max = Math.max(max, l);
                }
                double sum = 0;
                double[] p = new double[10];
                for (int c = 0; c < 10; c++) {
                    p[c] = Math.exp(logits[c] - max);
                    sum += p[c];
                }
                float[] dLogits = new float[10];
                for (int c = 0; c < 10; c++) {
                    dLogits[c] = (float) (p[c] / sum) - (c == data.y()[r] ? 1 : 0);
                }
                float[] w2 = w.get("fc2.weight");
                float[] dHidden = new float[HIDDEN];
                for (int c = 0; c < 10; c++) {
                    grad.get("fc2.bias")[c] += dLogits[c];
                    for (int h = 0; h < HIDDEN; h++) {
                        grad.get("fc2.weight")[c * HIDDEN + h] += dLogits[c] * hidden[h];
                        dHidden[h] += dLogits[c] * w2[c * HIDDEN + h];
                    }
                }
                for (int h = 0; h < HIDDEN; h++) {
                    if (hidden[h] <= 0) {
                        continue;
                    }
                    grad.get("fc1.bias")[h] += dHidden[h];
                    for (int i = 0; i < 64; i++) {
                        grad.get("fc1.weight")[h * 64 + i] += dHidden[h] * x[i];
                    }
                }
            }
            for (var e : w.entrySet()) {
                float[] g = grad.get(e.getKey());
                for (int i = 0; i < g.length; i++) {
                    e.getValue()[i] -= rate * g[i] / count;
                }
            }
        }
    }

    private static double accuracy(Map<String, float[]> w, Digits data, int from) {
        float[] hidden = new float[HIDDEN];
        int right = 0;
        for (int r = from; r < data.y().length; r++) {
            float[] logits = forward(w, data.x()[r], hidden);
            int best = 0;
            for (int c = 1; c < 10; c++) {
                best = logits[c] > logits[best] ? c : best;
            }
            right += best == data.y()[r] ? 1 : 0;
        }
        return right / (double) (data.y().length - from);
    }

    private static Path save(Map<String, float[]> w, Path dir) throws Exception {
        Files.createDirectories(dir);
        List<Tensor> tensors = new ArrayList<>();
        Map<String, long[]> shapes = Map.of("fc1.weight", new long[] {HIDDEN, 64}, "fc1.bias", new long[] {HIDDEN},
                "fc2.weight", new long[] {10, HIDDEN}, "fc2.bias", new long[] {10});
        long at = 0;
        for (var e : w.entrySet()) {
            ByteBuffer bytes = ByteBuffer.allocate(e.getValue().length * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (float v : e.getValue()) {
                bytes.putFloat(v);
            }
            TensorInfo info = new TensorInfo(e.getKey(), DType.F32, shapes.get(e.getKey()), at, at + bytes.capacity());
            at += bytes.capacity();
            tensors.add(new Tensor(info, MemorySegment.ofArray(bytes.array())));
        }
        SafetensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"mlp\"}");
        return dir;
    }

    /** The model at {@code ref} (a checkpoint, a delta, or base+adapter) as the engine reads it. */
    private Map<String, float[]> load(String ref) throws Exception {
        MergeOptions options = MergeOptions.defaults().withThreads(2).withCache(dir.resolve("cache"), 1L << 30);
        Map<String, float[]> w = new LinkedHashMap<>();
        try (InputModel model = InputModel.open(ref, options, new BlobCache(dir.resolve("cache"), 1L << 30))) {
            for (String name : List.of("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")) {
                TensorInfo t = model.tensor(name).orElseThrow();
                float[] v = new float[(int) t.elementCount()];
                model.source(name).read(0, v.length, v);
                w.put(name, v);
            }
        }
        return w;
    }

    /** Each format's accuracy; the table is printed. */
    private Map<String, Double> score(Path base, Path tuned, double baseAccuracy, double tunedAccuracy, Digits data,
                                      int trainRows, String title) throws Exception {

        MergeOptions options = MergeOptions.defaults().withThreads(2).withCache(dir.resolve("cache"), 1L << 30);
        Map<String, DeltaEdit> edits = new LinkedHashMap<>();
        edits.put("dense", new DeltaEdit.Dense());
        edits.put("dare p=0.5", new DeltaEdit.Dare(0.5, DeltaEdit.DareRescale.INVERSE, 1));
        edits.put("dare p=0.9", new DeltaEdit.Dare(0.9, DeltaEdit.DareRescale.INVERSE, 1));
        edits.put("magnitude 0.2", new DeltaEdit.Magnitude(0.2, DeltaEdit.Scope.TENSOR));
        edits.put("bitdelta", DeltaEdit.BitDelta.defaults());
        edits.put("bitdelta per row", new DeltaEdit.BitDelta(DeltaEdit.Scope.ROW, java.util.regex.Pattern.compile(""),
                DeltaEdit.EMBEDDINGS_AND_HEADS));
        StringBuilder table = new StringBuilder(String.format(Locale.ROOT, "%-18s %9s %8s %s%n", "format", "accuracy",
                "bytes", "smaller than the fine-tune"));
        table.append(String.format(Locale.ROOT, "%-18s %9.4f %8d%n", "base", baseAccuracy, 0));
        table.append(String.format(Locale.ROOT, "%-18s %9.4f %8d%n", "fine-tune", tunedAccuracy,
                (HIDDEN * 64 + HIDDEN + 10 * HIDDEN + 10) * 4));
        Map<String, Double> scores = new LinkedHashMap<>();
        for (var e : edits.entrySet()) {
            Path delta = dir.resolve(title.hashCode() + "-delta-" + scores.size());
            DeltaManifest m = new DeltaExtraction(options).run(base.toString(), tuned.toString(), e.getValue(), delta);
            double a = accuracy(load(delta.toString()), data, trainRows);
            scores.put(e.getKey(), a);
            table.append(String.format(Locale.ROOT, "%-18s %9.4f %8d %.2fx%n", e.getKey(), a, m.deltaBytes(),
                    m.compressionRatio()));
        }
        for (int rank : new int[] {2, 8}) {
            Path adapter = dir.resolve(title.hashCode() + "-lora-" + rank);
            new DeltaLowRank(options).run(base.toString(), tuned.toString(),
                    new DeltaLowRank.Spec(rank, 0, 0, java.util.regex.Pattern.compile(""), java.util.regex.Pattern.compile("^$")),
                    adapter);
            double a = accuracy(load(base + "+" + adapter), data, trainRows);
            long bytes = Files.size(adapter.resolve("adapter_model.safetensors"));
            scores.put("lowrank " + rank, a);
            table.append(String.format(Locale.ROOT, "%-18s %9.4f %8d (file)%n", "lowrank r=" + rank, a, bytes));
        }
        System.out.print(title + "\n" + table);
        assertEquals(tunedAccuracy, scores.get("dense"), "the dense delta is the fine-tune");
        assertTrue(scores.get("lowrank 8") >= scores.get("lowrank 2"), "a higher rank keeps as much:\n" + table);
        return scores;
    }

    /** Learning five new classes: a large delta. */
    @Test
    void aLargeDeltaKeepsItsAccuracyUnderMagnitudeAndLowRankButNotRandomDrops() throws Exception {
        Digits data = Digits.load();
        int trainRows = 1200;
        Map<String, float[]> w = init(7);
        train(w, data, trainRows, label -> label < 5, 300, 0.5f);
        Path base = save(w, dir.resolve("base"));
        double baseAccuracy = accuracy(w, data, trainRows);
        train(w, data, trainRows, label -> true, 300, 0.5f);
        Path tuned = save(w, dir.resolve("tuned"));
        double tunedAccuracy = accuracy(w, data, trainRows);
        assertTrue(tunedAccuracy > 0.85 && baseAccuracy < 0.6, "base " + baseAccuracy + ", fine-tune " + tunedAccuracy);
        Map<String, Double> scores = score(base, tuned, baseAccuracy, tunedAccuracy, data, trainRows,
                "large delta: trained on 0-4, fine-tuned on 0-9");
        // Learning five new classes moves the weights far (unlike an LLM's SFT): magnitude pruning and a rank-8
        // factoring keep the fine-tune's accuracy; random drops and one scale per tensor or row do not, as the
        // delta-editing literature finds for large deltas.
        for (String format : List.of("magnitude 0.2", "lowrank 8")) {
            assertTrue(scores.get(format) > tunedAccuracy - 0.06, format + " keeps the fine-tune's accuracy: " + scores);
        }
        assertTrue(scores.get("lowrank 8") > scores.get("lowrank 2") + 0.2, "a higher rank keeps more: " + scores);
        assertTrue(scores.get("dare p=0.5") > scores.get("dare p=0.9"), "dropping less keeps more: " + scores);
    }

    /** Further training on all ten classes at a small rate: a small delta, as post-training gives. */
    @Test
    void aSmallDeltaKeepsItsAccuracyUnderEveryEdit() throws Exception {
        Digits data = Digits.load();
        int trainRows = 1200;
        Map<String, float[]> w = init(11);
        train(w, data, trainRows, label -> true, 60, 0.5f);
        Path base = save(w, dir.resolve("base"));
        double baseAccuracy = accuracy(w, data, trainRows);
        train(w, data, trainRows, label -> true, 100, 0.2f);
        Path tuned = save(w, dir.resolve("tuned"));
        double tunedAccuracy = accuracy(w, data, trainRows);
        Map<String, Double> scores = score(base, tuned, baseAccuracy, tunedAccuracy, data, trainRows,
                "small delta: fine-tuned further on 0-9");
        for (String format : List.of("dare p=0.5", "magnitude 0.2", "bitdelta", "bitdelta per row", "lowrank 8")) {
            assertTrue(Math.abs(scores.get(format) - tunedAccuracy) < 0.03, format + " is within 3 points of the"
                    + " fine-tune (" + tunedAccuracy + "): " + scores);
        }
    }
}
