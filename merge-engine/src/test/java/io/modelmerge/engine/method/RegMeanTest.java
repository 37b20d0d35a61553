package io.modelmerge.engine.method;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.exec.MergeResult;
import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.safetensors.SafetensorsWriter;
import io.modelmerge.storage.safetensors.Tensor;
import io.modelmerge.storage.safetensors.TensorInfo;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.QRDecomposition;
import org.apache.commons.math3.linear.RealMatrix;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * RegMean through the executor on a one-layer model (lin.weight [3, 4], lin.bias [3]) whose Grams are written
 * here from random inputs, against the regression it solves computed independently (a QR least-squares solve of
 * the stacked inputs) and against its limits.
 */
class RegMeanTest {
    private static final int OUT = 3;
    private static final int IN = 4;

    @TempDir
    Path dir;

    private final Random random = new Random(5);

    private static void write(Path file, Map<String, float[]> tensors, Map<String, long[]> shapes,
                              Map<String, String> metadata) throws Exception {
        Files.createDirectories(file.getParent());
        List<Tensor> list = new ArrayList<>();
        long at = 0;
        for (var e : tensors.entrySet()) {
            ByteBuffer bytes = ByteBuffer.allocate(e.getValue().length * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (float v : e.getValue()) {
                bytes.putFloat(v);
            }
            list.add(new Tensor(new TensorInfo(e.getKey(), DType.F32, shapes.get(e.getKey()), at,
                    at + bytes.capacity()), MemorySegment.ofArray(bytes.array())));
            at += bytes.capacity();
        }
        SafetensorsWriter.write(file, list, metadata);
    }

    private float[] gaussian(int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextGaussian();
        }
        return v;
    }

    /** A model with weight {@code w} and a random bias. */
    private String model(String name, float[] w) throws Exception {
        write(dir.resolve(name).resolve("model.safetensors"), Map.of("lin.weight", w, "lin.bias", gaussian(OUT)),
                Map.of("lin.weight", new long[] {OUT, IN}, "lin.bias", new long[] {OUT}), Map.of());
        return dir.resolve(name).toString();
    }

    /** Inputs X [rows, IN] with the columns {@code zero} left at 0. */
    private double[][] inputs(int rows, int... zero) {
        double[][] x = new double[rows][IN];
        for (double[] row : x) {
            for (int c = 0; c < IN; c++) {
                row[c] = random.nextGaussian();
            }
            for (int c : zero) {
                row[c] = 0;
            }
        }
        return x;
    }

    private static float[] gramOf(double[][] x) {
        float[] g = new float[IN * IN];
        for (double[] row : x) {
            for (int r = 0; r < IN; r++) {
                for (int c = 0; c < IN; c++) {
                    g[r * IN + c] += (float) (row[r] * row[c]);
                }
            }
        }
        return g;
    }

    private String grams(String name, float[] gram) throws Exception {
        write(dir.resolve(name).resolve("model.safetensors"), Map.of("lin.weight", gram),
                Map.of("lin.weight", new long[] {IN, IN}), Map.of());
        return dir.resolve(name).toString();
    }

    private MergeResult merge(List<String> models, List<String> grams, double alpha, Path out) throws Exception {
        StringBuilder yaml = new StringBuilder("merge_method: regmean\nparameters: {reduce_non_diagonal_ratio: "
                + alpha + "}\nmodels:\n");
        for (int m = 0; m < models.size(); m++) {
            yaml.append("  - model: \"").append(models.get(m)).append("\"\n    parameters: {gram: \"")
                    .append(grams.get(m)).append("\"}\n");
        }
        return new MergeExecutor(MergeOptions.defaults().withThreads(2).withCache(dir.resolve("cache"), 1L << 30),
                p -> { }, new AtomicBoolean()).run(RecipeParser.parse(yaml.toString()), out);
    }

    private static float[] tensor(Path model, String name) throws Exception {
        try (SafetensorsFile f = SafetensorsFile.open(model.resolve("model.safetensors"))) {
            return Floats.widen(f.tensor(name));
        }
    }

    private static float[] tensor(String model, String name) throws Exception {
        return tensor(Path.of(model), name);
    }

    /** Wᵀ minimising Σᵢ ‖Xᵢ Wᵀ − Xᵢ Wᵢᵀ‖²: the least-squares solve of the stacked Xᵢ against the stacked XᵢWᵢᵀ. */
    private static double[] stackedLeastSquares(List<double[][]> xs, List<float[]> ws) {
        int rows = xs.stream().mapToInt(x -> x.length).sum();
        RealMatrix a = new Array2DRowRealMatrix(rows, IN);
        RealMatrix b = new Array2DRowRealMatrix(rows, OUT);
        int at = 0;
        for (int m = 0; m < xs.size(); m++) {
            for (double[] row : xs.get(m)) {
                a.setRow(at, row);
                for (int o = 0; o < OUT; o++) {
                    double y = 0;
                    for (int c = 0; c < IN; c++) {
                        y += row[c] * ws.get(m)[o * IN + c];
                    }
                    b.setEntry(at, o, y);
                }
                at++;
            }
        }
        RealMatrix wt = new QRDecomposition(a).getSolver().solve(b); // [IN, OUT]
        double[] w = new double[OUT * IN];
        for (int o = 0; o < OUT; o++) {
            for (int c = 0; c < IN; c++) {
                w[o * IN + c] = wt.getEntry(c, o);
            }
        }
        return w;
    }

    @Test
    void itIsTheStackedLeastSquaresSolution() throws Exception {
        float[] w1 = gaussian(OUT * IN);
        float[] w2 = gaussian(OUT * IN);
        double[][] x1 = inputs(20);
        double[][] x2 = inputs(30);
        List<String> models = List.of(model("a", w1), model("b", w2));
        Path out = dir.resolve("merged");
        merge(models, List.of(grams("ga", gramOf(x1)), grams("gb", gramOf(x2))), 1.0, out);
        double[] expected = stackedLeastSquares(List.of(x1, x2), List.of(w1, w2));
        float[] merged = tensor(out, "lin.weight");
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], merged[i], 1e-4 * Math.max(1, Math.abs(expected[i])), "element " + i);
        }
        float[] b1 = tensor(models.get(0), "lin.bias");
        float[] b2 = tensor(models.get(1), "lin.bias");
        float[] bias = tensor(out, "lin.bias");
        for (int o = 0; o < OUT; o++) {
            assertEquals((b1[o] + b2[o]) / 2, bias[o], 1e-6, "biases are averaged");
        }

        // a Gram stored once under its input's name, which the file's metadata maps the weight to, is the same
        String shared = dir.resolve("shared").resolve("model.safetensors").toString();
        write(Path.of(shared), Map.of("lin.input", gramOf(x1)), Map.of("lin.input", new long[] {IN, IN}),
                Map.of("lin.weight", "lin.input"));
        Path viaMetadata = dir.resolve("via-metadata");
        merge(models, List.of(shared, grams("gb2", gramOf(x2))), 1.0, viaMetadata);
        assertEquals(java.util.Arrays.toString(merged), java.util.Arrays.toString(tensor(viaMetadata, "lin.weight")));
    }

    @Test
    void identicalGramsGiveTheMean() throws Exception {
        float[] w1 = gaussian(OUT * IN);
        float[] w2 = gaussian(OUT * IN);
        float[] g = gramOf(inputs(25));
        Path out = dir.resolve("merged");
        merge(List.of(model("a", w1), model("b", w2)), List.of(grams("ga", g), grams("gb", g)), 0.6, out);
        float[] merged = tensor(out, "lin.weight");
        for (int i = 0; i < merged.length; i++) {
            assertEquals((w1[i] + w2[i]) / 2, merged[i], 1e-5, "element " + i);
        }
    }

    @Test
    void alphaZeroIsTheAverageWeightedPerInputFeatureByItsEnergy() throws Exception {
        float[] w1 = gaussian(OUT * IN);
        float[] w2 = gaussian(OUT * IN);
        float[] g1 = gramOf(inputs(10));
        float[] g2 = gramOf(inputs(40));
        Path out = dir.resolve("merged");
        merge(List.of(model("a", w1), model("b", w2)), List.of(grams("ga", g1), grams("gb", g2)), 0.0, out);
        float[] merged = tensor(out, "lin.weight");
        for (int o = 0; o < OUT; o++) {
            for (int c = 0; c < IN; c++) {
                double e1 = g1[c * IN + c];
                double e2 = g2[c * IN + c];
                double want = (w1[o * IN + c] * e1 + w2[o * IN + c] * e2) / (e1 + e2);
                assertEquals(want, merged[o * IN + c], 1e-5, "row " + o + " column " + c);
            }
        }
    }

    @Test
    void aSingularSumUsesARidgeAndSaysSo() throws Exception {
        float[] w1 = gaussian(OUT * IN);
        float[] w2 = gaussian(OUT * IN);
        // feature 2 never appears in either model's inputs: no Gram constrains that column
        Path out = dir.resolve("merged");
        MergeResult result = merge(List.of(model("a", w1), model("b", w2)),
                List.of(grams("ga", gramOf(inputs(20, 2))), grams("gb", gramOf(inputs(20, 2)))), 1.0, out);
        assertTrue(result.notes().stream().anyMatch(n -> n.contains("lin.weight") && n.contains("ridge")),
                "notes: " + result.notes());
        for (float v : tensor(out, "lin.weight")) {
            assertTrue(Float.isFinite(v), "the ridge keeps the solve finite");
        }
        assertTrue(Files.readString(out.resolve("README.md")).contains("ridge"), "the model card says so too");
    }

    /** Three [1024, 1024] solves in double (24 MiB and more) do not fit a 16 MiB budget: refused before any merge. */
    @Test
    void gramsOverTheMemoryBudgetAreRefused() throws Exception {
        int in = 1024;
        List<String> models = new ArrayList<>();
        List<String> grams = new ArrayList<>();
        for (int m = 0; m < 2; m++) {
            Path model = dir.resolve("wide-" + m).resolve("model.safetensors");
            write(model, Map.of("lin.weight", gaussian(2 * in)), Map.of("lin.weight", new long[] {2, in}), Map.of());
            models.add(model.getParent().toString());
            float[] identity = new float[in * in];
            for (int i = 0; i < in; i++) {
                identity[i * in + i] = 1;
            }
            Path gram = dir.resolve("wide-gram-" + m).resolve("model.safetensors");
            write(gram, Map.of("lin.weight", identity), Map.of("lin.weight", new long[] {in, in}), Map.of());
            grams.add(gram.toString());
        }
        StringBuilder yaml = new StringBuilder("merge_method: regmean\nmodels:\n");
        for (int m = 0; m < 2; m++) {
            yaml.append("  - model: \"").append(models.get(m)).append("\"\n    parameters: {gram: \"")
                    .append(grams.get(m)).append("\"}\n");
        }
        RecipeException e = assertThrows(RecipeException.class, () -> new MergeExecutor(MergeOptions.defaults()
                .withThreads(1).withMemory(16L << 20), p -> { }, new AtomicBoolean())
                .run(RecipeParser.parse(yaml.toString()), dir.resolve("wide-out")));
        assertTrue(e.getMessage().contains("lin.weight") && e.getMessage().contains("regmean")
                && e.getMessage().contains("budget"), e.getMessage());
    }

    @Test
    void aGramOfTheWrongShapeIsRefusedNamingTheFile() throws Exception {
        float[] w = gaussian(OUT * IN);
        String bad = dir.resolve("bad").resolve("model.safetensors").toString();
        write(Path.of(bad), Map.of("lin.weight", new float[9]), Map.of("lin.weight", new long[] {3, 3}), Map.of());
        RecipeException e = assertThrows(RecipeException.class, () -> merge(List.of(model("a", w), model("b", w)),
                List.of(bad, grams("gb", gramOf(inputs(5)))), 1.0, dir.resolve("out")));
        assertTrue(e.getMessage().contains(bad) && e.getMessage().contains("[3, 3]") && e.getMessage().contains("[4, 4]"),
                e.getMessage());
        assertTrue(!Files.exists(dir.resolve("out")), "nothing is written");
    }
}
