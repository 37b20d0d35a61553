package io.modelmerge.engine.testing;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.safetensors.SafetensorsWriter;
import io.modelmerge.storage.safetensors.Tensor;
import io.modelmerge.storage.safetensors.TensorInfo;
import io.modelmerge.storage.testing.Fixtures;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.IntPredicate;
import java.util.zip.GZIPInputStream;

/**
 * A 64-H-10 MLP (ReLU) on the real digits set (../shared/fixtures/data/digits), trained in tests with full-batch
 * gradient descent: weights by name (fc1.weight [H, 64], fc1.bias, fc2.weight [10, H], fc2.bias), as the example
 * evaluator (deploy/examples/evaluator) reads them.
 */
public final class DigitsMlp {
    private DigitsMlp() {
    }

    /** 1797 rows of 64 pixels (scaled to [0, 1]) and a label. */
    public record Digits(float[][] x, int[] y) {
        public static Digits load() throws IOException {
            Path csv = Fixtures.real().getParent().resolve("data/digits/digits.csv.gz");
            List<float[]> xs = new ArrayList<>();
            List<Integer> ys = new ArrayList<>();
            try (BufferedReader in = new BufferedReader(new InputStreamReader(new GZIPInputStream(
                    Files.newInputStream(csv))))) {
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

    private static int hidden(Map<String, float[]> w) {
        return w.get("fc1.bias").length;
    }

    /** Weights drawn with {@code seed} (scaled Gaussians, zero biases). */
    public static Map<String, float[]> init(int hidden, long seed) {
        Random random = new Random(seed);
        Map<String, float[]> w = new LinkedHashMap<>();
        w.put("fc1.weight", gaussian(random, hidden * 64, 1 / Math.sqrt(64)));
        w.put("fc1.bias", new float[hidden]);
        w.put("fc2.weight", gaussian(random, 10 * hidden, 1 / Math.sqrt(hidden)));
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

    public static Map<String, float[]> copy(Map<String, float[]> w) {
        Map<String, float[]> c = new LinkedHashMap<>();
        w.forEach((k, v) -> c.put(k, v.clone()));
        return c;
    }

    /** Logits of one sample; {@code hidden} receives the hidden layer's activations. */
    public static float[] forward(Map<String, float[]> w, float[] x, float[] hidden) {
        int size = hidden(w);
        float[] w1 = w.get("fc1.weight");
        float[] b1 = w.get("fc1.bias");
        float[] w2 = w.get("fc2.weight");
        float[] b2 = w.get("fc2.bias");
        for (int h = 0; h < size; h++) {
            float s = b1[h];
            for (int i = 0; i < 64; i++) {
                s += w1[h * 64 + i] * x[i];
            }
            hidden[h] = Math.max(0, s);
        }
        float[] logits = new float[10];
        for (int c = 0; c < 10; c++) {
            float s = b2[c];
            for (int h = 0; h < size; h++) {
                s += w2[c * size + h] * hidden[h];
            }
            logits[c] = s;
        }
        return logits;
    }

    /** Adds the gradient of one sample's softmax cross-entropy to {@code grad}, squared where {@code squared}. */
    private static void gradient(Map<String, float[]> w, float[] x, int label, Map<String, float[]> grad,
                                 boolean squared) {
        int size = hidden(w);
        float[] hidden = new float[size];
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
            dLogits[c] = (float) (p[c] / sum) - (c == label ? 1 : 0);
        }
        float[] w2 = w.get("fc2.weight");
        float[] dHidden = new float[size];
        for (int c = 0; c < 10; c++) {
            add(grad.get("fc2.bias"), c, dLogits[c], squared);
            for (int h = 0; h < size; h++) {
                add(grad.get("fc2.weight"), c * size + h, dLogits[c] * hidden[h], squared);
                dHidden[h] += dLogits[c] * w2[c * size + h];
            }
        }
        for (int h = 0; h < size; h++) {
            if (hidden[h] <= 0) {
                continue;
            }
            add(grad.get("fc1.bias"), h, dHidden[h], squared);
            for (int i = 0; i < 64; i++) {
                add(grad.get("fc1.weight"), h * 64 + i, dHidden[h] * x[i], squared);
            }
        }
    }

    private static void add(float[] into, int i, float g, boolean squared) {
        into[i] += squared ? g * g : g;
    }

    private static Map<String, float[]> zeros(Map<String, float[]> w) {
        Map<String, float[]> z = new LinkedHashMap<>();
        w.forEach((k, v) -> z.put(k, new float[v.length]));
        return z;
    }

    /** Full-batch gradient descent on softmax cross-entropy over rows [0, rows) whose labels {@code use} accepts. */
    public static void train(Map<String, float[]> w, Digits data, int rows, IntPredicate use, int epochs,
                             float rate) {
        trainOnRows(w, data, rows, r -> use.test(data.y()[r]), epochs, rate);
    }

    /** Full-batch gradient descent on softmax cross-entropy over the rows of [0, rows) that {@code use} accepts. */
    public static void trainOnRows(Map<String, float[]> w, Digits data, int rows, IntPredicate use, int epochs,
                                   float rate) {
        for (int epoch = 0; epoch < epochs; epoch++) {
            Map<String, float[]> grad = zeros(w);
            int count = 0;
            for (int r = 0; r < rows; r++) {
                if (use.test(r)) {
                    count++;
                    gradient(w, data.x()[r], data.y()[r], grad, false);
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

    /**
     * The empirical diagonal Fisher over the rows of [0, rows) that {@code use} accepts: the mean of each
     * parameter's squared per-example gradient of log p(y | x).
     */
    public static Map<String, float[]> fisher(Map<String, float[]> w, Digits data, int rows, IntPredicate use) {
        Map<String, float[]> sum = zeros(w);
        int count = 0;
        for (int r = 0; r < rows; r++) {
            if (use.test(r)) {
                count++;
                gradient(w, data.x()[r], data.y()[r], sum, true);
            }
        }
        for (float[] v : sum.values()) {
            for (int i = 0; i < v.length; i++) {
                v[i] /= count;
            }
        }
        return sum;
    }

    /**
     * The Gram matrices of each linear layer's inputs over the rows of [0, rows) that {@code use} accepts, averaged
     * per example (as FusionBench's RegMean keeps a running mean): fc1.weight's of the pixels [64, 64],
     * fc2.weight's of the hidden activations [H, H]; written as {@code dir/model.safetensors} under the weights'
     * names.
     */
    public static Path grams(Map<String, float[]> w, Digits data, int rows, IntPredicate use, Path dir)
            throws IOException {
        int size = hidden(w);
        double[] pixels = new double[64 * 64];
        double[] activations = new double[size * size];
        float[] hidden = new float[size];
        int count = 0;
        for (int r = 0; r < rows; r++) {
            if (!use.test(r)) {
                continue;
            }
            count++;
            float[] x = data.x()[r];
            forward(w, x, hidden);
            outer(x, pixels);
            outer(hidden, activations);
        }
        Files.createDirectories(dir);
        List<Tensor> tensors = new ArrayList<>();
        tensors.add(f32("fc1.weight", new long[] {64, 64}, pixels, count, 0));
        tensors.add(f32("fc2.weight", new long[] {size, size}, activations, count, 64L * 64 * 4));
        SafetensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of());
        return dir;
    }

    private static void outer(float[] v, double[] into) {
        for (int r = 0; r < v.length; r++) {
            for (int c = 0; c < v.length; c++) {
                into[r * v.length + c] += (double) v[r] * v[c];
            }
        }
    }

    private static Tensor f32(String name, long[] shape, double[] sums, int count, long at) {
        ByteBuffer bytes = ByteBuffer.allocate(sums.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (double v : sums) {
            bytes.putFloat((float) (v / count));
        }
        return new Tensor(new TensorInfo(name, DType.F32, shape, at, at + bytes.capacity()),
                MemorySegment.ofArray(bytes.array()));
    }

    /** Accuracy on rows [from, to). */
    public static double accuracy(Map<String, float[]> w, Digits data, int from, int to) {
        float[] hidden = new float[hidden(w)];
        int right = 0;
        for (int r = from; r < to; r++) {
            float[] logits = forward(w, data.x()[r], hidden);
            int best = 0;
            for (int c = 1; c < 10; c++) {
                best = logits[c] > logits[best] ? c : best;
            }
            right += best == data.y()[r] ? 1 : 0;
        }
        return right / (double) (to - from);
    }

    /** Writes the weights (or anything shaped like them, such as a Fisher) as {@code dir/model.safetensors}. */
    public static Path save(Map<String, float[]> w, Path dir) throws IOException {
        Files.createDirectories(dir);
        int size = hidden(w);
        Map<String, long[]> shapes = Map.of("fc1.weight", new long[] {size, 64}, "fc1.bias", new long[] {size},
                "fc2.weight", new long[] {10, size}, "fc2.bias", new long[] {10});
        List<Tensor> tensors = new ArrayList<>();
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

    /** The weights of {@code dir/model.safetensors}. */
    public static Map<String, float[]> read(Path dir) throws IOException {
        Map<String, float[]> w = new LinkedHashMap<>();
        try (SafetensorsFile file = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
            for (String name : List.of("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")) {
                w.put(name, Floats.widen(file.tensor(name)));
            }
        }
        return w;
    }
}
