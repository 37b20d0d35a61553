package io.modelmerge.engine.exec;

import static io.modelmerge.engine.exec.StoredTensors.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.delta.DeltaEdit;
import io.modelmerge.engine.delta.DeltaManifest.Encoding;
import io.modelmerge.engine.delta.DeltaManifest;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Delta extraction and application on synthetic Llama-shaped models: exactness, each edit's rule, refusals. */
class DeltaEditingTest {
    private static final String UP = "model.layers.1.mlp.up_proj.weight";

    @TempDir
    Path dir;
    private int outputs;

    private MergeOptions options(int threads) {
        return MergeOptions.defaults().withThreads(threads).withMemory(16L << 20).withCache(dir.resolve("cache"), 1L << 30);
    }

    /** A base and a fine-tune a small step away, of {@code dtype}; the fine-tune's vocabulary has one more row. */
    private Path[] models(DType dtype) throws IOException {
        List<TensorSpec> baseSpecs = SyntheticCheckpoints.llama(2, 16, 40, 32, dtype);
        List<TensorSpec> tunedSpecs = new ArrayList<>(SyntheticCheckpoints.llama(2, 16, 40, 33, dtype));
        Path base = SyntheticCheckpoints.write(dir.resolve("base-" + dtype), baseSpecs,
                (tensor, i) -> TestNoise.of(1, tensor, i));
        Path tuned = SyntheticCheckpoints.write(dir.resolve("tuned-" + dtype), tunedSpecs,
                (tensor, i) -> TestNoise.of(1, tensor, i) + 0.01 * TestNoise.of(2, tensor, i) + (i % 97 == 0 ? 3 : 0));
        return new Path[] {base, tuned};
    }

    private Path out(String name) {
        return dir.resolve(name + "-" + outputs++);
    }

    @Test
    void extractThenApplyGivesTheFineTuneBackBitForBit() throws Exception {
        for (DType dtype : new DType[] {DType.F32, DType.BF16, DType.F16}) {
            Path[] m = models(dtype);
            Path delta = out("delta");
            DeltaManifest manifest = new DeltaExtraction(options(2)).run(m[0].toString(), m[1].toString(),
                    new DeltaEdit.Dense(), delta);
            assertEquals(Encoding.WHOLE, manifest.tensor("model.embed_tokens.weight").orElseThrow().encoding(),
                    "a tensor shaped differently from the base's is stored whole");
            assertEquals(Encoding.DENSE, manifest.tensor(UP).orElseThrow().encoding());
            assertEquals(0.0, manifest.worst().orElseThrow().relativeError());
            if (dtype == DType.F32) { // base + (f − b) rounds away from f for some elements; their values are kept exactly
                assertTrue(manifest.tensors().stream().mapToLong(DeltaManifest.TensorEntry::exact).sum() > 0);
                assertTrue(Files.exists(delta.resolve(DeltaManifest.EXACT)));
            }
            assertTrue(Files.exists(delta.resolve("config.json")));
            Path rebuilt = out("rebuilt");
            new DeltaApplication(options(2)).apply(m[0].toString(), List.of(new DeltaApplication.Part(delta.toString(), 1)),
                    rebuilt);
            try (SafetensorsFile original = SafetensorsFile.open(m[1].resolve("model.safetensors"));
                 SafetensorsFile back = SafetensorsFile.open(rebuilt.resolve("model.safetensors"))) {
                assertEquals(original.tensors().size(), back.tensors().size());
                for (var t : original.tensors()) {
                    assertEquals(-1, original.tensor(t).data().mismatch(back.tensor(t.name()).data()), dtype + " " + t.name());
                    assertEquals(t.dtype(), back.tensor(t.name()).dtype());
                }
            }
        }
    }

    @Test
    void aHeadTiedToTheEmbeddingIsStoredOnceAndWrittenTwice() throws Exception {
        List<TensorSpec> specs = SyntheticCheckpoints.llama(1, 16, 40, 32, DType.BF16);
        SyntheticCheckpoints.ElementValues tiedValues = (tensor, i) -> TestNoise.of(3,
                tensor.equals("lm_head.weight") ? "model.embed_tokens.weight" : tensor, i);
        Path base = SyntheticCheckpoints.write(dir.resolve("tb"), specs, (t, i) -> TestNoise.of(4, t, i));
        Path tuned = SyntheticCheckpoints.write(dir.resolve("tt"), specs, tiedValues);
        Path delta = out("tied");
        DeltaManifest manifest = new DeltaExtraction(options(1)).run(base.toString(), tuned.toString(),
                new DeltaEdit.Dense(), delta);
        assertEquals(java.util.Map.of("lm_head.weight", "model.embed_tokens.weight"), manifest.tied());
        assertTrue(manifest.tensor("lm_head.weight").isEmpty());
        Path rebuilt = out("tied-rebuilt");
        new DeltaApplication(options(1)).apply(base.toString(), List.of(new DeltaApplication.Part(delta.toString(), 1)), rebuilt);
        assertArrayEquals(tensor(tuned, "model.safetensors", "lm_head.weight"),
                tensor(rebuilt, "model.safetensors", "lm_head.weight"));
    }

    @Test
    void dareWithPZeroIsTheDenseDeltaAndASeedGivesTheSameBytesAtAnyThreadCount() throws Exception {
        Path[] m = models(DType.F32);
        Path dense = out("dense");
        new DeltaExtraction(options(2)).run(m[0].toString(), m[1].toString(), new DeltaEdit.Dense(), dense);
        Path p0 = out("p0");
        DeltaManifest manifest = new DeltaExtraction(options(2)).run(m[0].toString(), m[1].toString(),
                new DeltaEdit.Dare(0, DeltaEdit.DareRescale.INVERSE, 5), p0);
        assertEquals(manifest.tensor(UP).orElseThrow().elements(), manifest.tensor(UP).orElseThrow().kept());
        assertArrayEquals(tensor(dense, DeltaManifest.WEIGHTS, UP), tensor(p0, DeltaManifest.WEIGHTS, UP + ".values"));
        Path one = out("dare1");
        Path two = out("dare2");
        new DeltaExtraction(options(1)).run(m[0].toString(), m[1].toString(),
                new DeltaEdit.Dare(0.9, DeltaEdit.DareRescale.INVERSE, 11), one);
        new DeltaExtraction(options(2)).run(m[0].toString(), m[1].toString(),
                new DeltaEdit.Dare(0.9, DeltaEdit.DareRescale.INVERSE, 11), two);
        assertArrayEquals(Files.readAllBytes(one.resolve(DeltaManifest.WEIGHTS)), Files.readAllBytes(two.resolve(DeltaManifest.WEIGHTS)));
    }

    /** DARE's rescaled drop is unbiased: over many seeds the mean of Δ̂ approaches Δ (error shrinks as 1/√seeds). */
    @Test
    void dareAveragedOverSeedsConvergesToTheDelta() throws Exception {
        Path[] m = models(DType.F32);
        float[] delta = null;
        int seeds = 64;
        double[] sum = null;
        for (int s = 0; s < seeds; s++) {
            Path d = out("dare-seed");
            new DeltaExtraction(options(2)).run(m[0].toString(), m[1].toString(),
                    new DeltaEdit.Dare(0.5, DeltaEdit.DareRescale.INVERSE, s), d);
            Path rebuilt = out("dare-rebuilt");
            new DeltaApplication(options(2)).apply(m[0].toString(), List.of(new DeltaApplication.Part(d.toString(), 1)), rebuilt);
            float[] got = tensor(rebuilt, "model.safetensors", UP);
            if (sum == null) {
                sum = new double[got.length];
                float[] base = tensor(m[0], "model.safetensors", UP);
                float[] tuned = tensor(m[1], "model.safetensors", UP);
                delta = new float[got.length];
                for (int i = 0; i < got.length; i++) {
                    delta[i] = tuned[i] - base[i];
                }
                for (int i = 0; i < got.length; i++) {
                    sum[i] -= seeds * (double) base[i];
                }
            }
            for (int i = 0; i < got.length; i++) {
                sum[i] += got[i];
            }
        }
        double error = 0;
        double norm = 0;
        for (int i = 0; i < sum.length; i++) {
            error += Math.pow(sum[i] / seeds - delta[i], 2);
            norm += (double) delta[i] * delta[i];
        }
        // one seed's relative error is √(p/(1−p)) = 1; the mean of 64 is 1/8 of that, give or take
        assertTrue(Math.sqrt(error / norm) < 0.2, "relative error of the mean " + Math.sqrt(error / norm));
    }

    @Test
    void magnitudeKeepsExactlyTheTopDensityAndStoresItSmaller() throws Exception {
        Path[] m = models(DType.BF16);
        Path d = out("magnitude");
        DeltaManifest manifest = new DeltaExtraction(options(2)).run(m[0].toString(), m[1].toString(),
                new DeltaEdit.Magnitude(0.1, DeltaEdit.Scope.TENSOR), d);
        var up = manifest.tensor(UP).orElseThrow();
        assertEquals((long) Math.floor(0.1 * up.elements()), up.kept());
        float[] values = tensor(d, DeltaManifest.WEIGHTS, UP + ".values");
        float[] base = tensor(m[0], "model.safetensors", UP);
        float[] tuned = tensor(m[1], "model.safetensors", UP);
        float[] magnitudes = new float[base.length];
        for (int i = 0; i < base.length; i++) {
            magnitudes[i] = Math.abs(tuned[i] - base[i]);
        }
        float[] sorted = magnitudes.clone();
        java.util.Arrays.sort(sorted);
        float kth = sorted[sorted.length - (int) up.kept()];
        for (float v : values) {
            assertTrue(Math.abs(v) >= kth, v + " below the k-th largest " + kth);
        }
        try (SafetensorsFile f = SafetensorsFile.open(d.resolve(DeltaManifest.WEIGHTS))) {
            assertTrue(f.header().tensor(UP + ".bitmap").isPresent() || f.header().tensor(UP + ".indices").isPresent());
        }
        assertTrue(manifest.deltaBytes() < manifest.fineTuneBytes(), manifest.deltaBytes() + " vs " + manifest.fineTuneBytes());
        assertTrue(up.relativeError() > 0 && up.deltaError() > 0 && up.deltaError() < 1);
    }

    /**
     * A tensor larger than a chunk is selected in one read when a sample bounds the k-th largest (|Δ| on 64 levels,
     * thousands of ties at the k-th): the entries kept are exactly the first k by |Δ| then position, at one thread
     * and at two, and the errors recorded are those of what was kept.
     */
    @Test
    void magnitudeOverManyChunksKeepsTheFirstKByMagnitudeThenPosition() throws Exception {
        checkMagnitudeOverManyChunks("even", i -> ((i * 7919L) % 64 - 32) / 64.0);
    }

    /**
     * Where the sample misleads (the windows it reads, the first 4 Ki of every 32 Ki elements, hold the largest
     * |Δ|, so it bounds the k-th too high), the selection falls back to exact passes: the same rule holds.
     */
    @Test
    void magnitudeFromAMisleadingSampleIsStillTheFirstKByMagnitudeThenPosition() throws Exception {
        checkMagnitudeOverManyChunks("misleading",
                i -> i % 32768 < 4096 ? 1 + (i % 7) / 8.0 : ((i * 7919L) % 64 - 32) / 256.0);
    }

    private void checkMagnitudeOverManyChunks(String label, java.util.function.LongToDoubleFunction delta)
            throws Exception {
        String name = "model.layers.0.mlp.up_proj.weight";
        int rows = 1024; // 512 Ki elements: more than a chunk at 1 thread and at 2
        int columns = 512;
        List<TensorSpec> specs = List.of(new TensorSpec(name, DType.BF16, new long[] {rows, columns}));
        Path base = SyntheticCheckpoints.write(dir.resolve(label + "-base"), specs,
                (tensor, i) -> 0.5 + (i % 5) / 4.0);
        Path tuned = SyntheticCheckpoints.write(dir.resolve(label + "-tuned"), specs,
                (tensor, i) -> 0.5 + (i % 5) / 4.0 + delta.applyAsDouble(i));
        float[] b = tensor(base, "model.safetensors", name);
        float[] f = tensor(tuned, "model.safetensors", name);
        int n = rows * columns;
        long k = (long) Math.floor(0.1 * n);
        long[] order = new long[n];
        for (int i = 0; i < n; i++) {
            order[i] = (0x7FFFFFFFL - Float.floatToIntBits(Math.abs(f[i] - b[i]))) << 32 | i;
        }
        java.util.Arrays.sort(order);
        boolean[] expected = new boolean[n];
        for (int r = 0; r < k; r++) {
            expected[(int) order[r]] = true;
        }
        double[] sums = new double[4]; // Σ θ², Σ (θ̂ − θ)², Σ Δ², Σ (Δ̂ − Δ)²
        for (int i = 0; i < n; i++) {
            double d = f[i] - b[i];
            double rebuilt = expected[i] ? io.modelmerge.engine.kernel.Floats.round(b[i] + (f[i] - b[i]), DType.BF16)
                    : b[i];
            sums[0] += (double) f[i] * f[i];
            sums[1] += (rebuilt - f[i]) * (rebuilt - f[i]);
            sums[2] += d * d;
            sums[3] += expected[i] ? 0 : d * d;
        }
        byte[] first = null;
        for (int threads : new int[] {1, 2}) {
            Path d = out(label + "-magnitude");
            DeltaManifest manifest = new DeltaExtraction(options(threads)).run(base.toString(), tuned.toString(),
                    new DeltaEdit.Magnitude(0.1, DeltaEdit.Scope.TENSOR), d);
            DeltaManifest.TensorEntry entry = manifest.tensor(name).orElseThrow();
            assertEquals(k, entry.kept());
            assertEquals(Math.sqrt(sums[1] / sums[0]), entry.relativeError(), 1e-6 * entry.relativeError(), label);
            assertEquals(Math.sqrt(sums[3] / sums[2]), entry.deltaError(), 1e-6 * entry.deltaError(), label);
            float[] values = tensor(d, DeltaManifest.WEIGHTS, name + ".values");
            try (SafetensorsFile file = SafetensorsFile.open(d.resolve(DeltaManifest.WEIGHTS))) {
                var bitmap = file.tensor(name + ".bitmap").data();
                int at = 0;
                for (int i = 0; i < n; i++) {
                    boolean kept = (bitmap.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i >>> 3) >>> (i & 7) & 1) != 0;
                    assertEquals(expected[i], kept, label + ": element " + i);
                    if (kept) {
                        assertEquals(f[i] - b[i], values[at++], label + ": value of element " + i);
                    }
                }
            }
            byte[] bytes = Files.readAllBytes(d.resolve(DeltaManifest.WEIGHTS));
            if (first != null) {
                assertArrayEquals(first, bytes, label + ": one thread and two wrote different bytes");
            }
            first = bytes;
        }
    }

    /**
     * Per-row magnitude keeps in each row exactly floor(density · columns) entries, the first by |Δ| then column
     * (|Δ| on 16 levels: ties in every row), at one thread and at two.
     */
    @Test
    void rowMagnitudeKeepsTheFirstOfEachRowByMagnitudeThenColumn() throws Exception {
        String name = "model.layers.0.mlp.up_proj.weight";
        int rows = 64;
        int columns = 48;
        List<TensorSpec> specs = List.of(new TensorSpec(name, DType.F32, new long[] {rows, columns}));
        Path base = SyntheticCheckpoints.write(dir.resolve("row-base"), specs, (tensor, i) -> 0.25);
        Path tuned = SyntheticCheckpoints.write(dir.resolve("row-tuned"), specs,
                (tensor, i) -> 0.25 + ((i * 7919L) % 16 - 8) / 16.0);
        int perRow = (int) Math.floor(0.25 * columns);
        byte[] first = null;
        for (int threads : new int[] {1, 2}) {
            Path d = out("row-magnitude");
            DeltaManifest manifest = new DeltaExtraction(options(threads)).run(base.toString(), tuned.toString(),
                    new DeltaEdit.Magnitude(0.25, DeltaEdit.Scope.ROW), d);
            assertEquals((long) rows * perRow, manifest.tensor(name).orElseThrow().kept());
            float[] values = tensor(d, DeltaManifest.WEIGHTS, name + ".values");
            try (SafetensorsFile f = SafetensorsFile.open(d.resolve(DeltaManifest.WEIGHTS))) {
                var bitmap = f.tensor(name + ".bitmap").data();
                int at = 0;
                for (int r = 0; r < rows; r++) {
                    final int row = r;
                    Integer[] order = new Integer[columns];
                    for (int c = 0; c < columns; c++) {
                        order[c] = c;
                    }
                    java.util.Arrays.sort(order, (x, y) -> {
                        int byMagnitude = Long.compare(Math.abs(((row * columns + (long) y) * 7919L) % 16 - 8),
                                Math.abs(((row * columns + (long) x) * 7919L) % 16 - 8));
                        return byMagnitude != 0 ? byMagnitude : Integer.compare(x, y);
                    });
                    boolean[] keep = new boolean[columns];
                    for (int k = 0; k < perRow; k++) {
                        keep[order[k]] = true;
                    }
                    for (int c = 0; c < columns; c++) {
                        int i = r * columns + c;
                        boolean kept = (bitmap.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i >>> 3) >>> (i & 7) & 1) != 0;
                        assertEquals(keep[c], kept, "row " + r + " column " + c);
                        if (kept) {
                            assertEquals(((i * 7919L) % 16 - 8) / 16.0f, values[at++], "value of element " + i);
                        }
                    }
                }
            }
            byte[] bytes = Files.readAllBytes(d.resolve(DeltaManifest.WEIGHTS));
            if (first != null) {
                assertArrayEquals(first, bytes, "one thread and two wrote different bytes");
            }
            first = bytes;
        }
    }

    /** BitDelta's α = mean|Δ| minimises ‖α·sign(Δ) − Δ‖ over α: the stored error is below that of α ± 1%. */
    @Test
    void bitDeltaScaleIsTheL2OptimumAndOnlyLinearWeightsAreBinarised() throws Exception {
        Path[] m = models(DType.F32);
        Path d = out("bits");
        DeltaManifest manifest = new DeltaExtraction(options(2)).run(m[0].toString(), m[1].toString(),
                DeltaEdit.BitDelta.defaults(), d);
        assertEquals(Encoding.SIGNS, manifest.tensor(UP).orElseThrow().encoding());
        assertEquals(Encoding.DENSE, manifest.tensor("model.norm.weight").orElseThrow().encoding());
        assertFalse(DeltaEdit.BitDelta.defaults().edits("lm_head.weight", 2));
        assertFalse(DeltaEdit.BitDelta.defaults().edits("model.embed_tokens.weight", 2));
        float alpha = tensor(d, DeltaManifest.WEIGHTS, UP + ".scale")[0];
        float[] base = tensor(m[0], "model.safetensors", UP);
        float[] tuned = tensor(m[1], "model.safetensors", UP);
        double best = error(base, tuned, alpha);
        assertTrue(best < error(base, tuned, alpha * 1.01f) && best < error(base, tuned, alpha * 0.99f));
        assertEquals(Math.sqrt(best / norm(base, tuned)), manifest.tensor(UP).orElseThrow().deltaError(), 1e-6);
        Path rebuilt = out("bits-rebuilt");
        new DeltaApplication(options(2)).apply(m[0].toString(), List.of(new DeltaApplication.Part(d.toString(), 1)), rebuilt);
        float[] got = tensor(rebuilt, "model.safetensors", UP);
        for (int i = 0; i < got.length; i++) {
            float delta = tuned[i] - base[i];
            assertEquals(base[i] + (delta >= 0 ? alpha : -alpha), got[i], 0f);
        }
    }

    private static double error(float[] base, float[] tuned, float alpha) {
        double e = 0;
        for (int i = 0; i < base.length; i++) {
            double d = tuned[i] - base[i];
            e += Math.pow((d >= 0 ? alpha : -alpha) - d, 2);
        }
        return e;
    }

    private static double norm(float[] base, float[] tuned) {
        double e = 0;
        for (int i = 0; i < base.length; i++) {
            e += Math.pow(tuned[i] - base[i], 2);
        }
        return e;
    }

    @Test
    void aDeltaAppliedToAnotherBaseIsRefusedNamingBothAndNothingIsWritten() throws Exception {
        Path[] m = models(DType.F32);
        Path d = out("refuse");
        new DeltaExtraction(options(2)).run(m[0].toString(), m[1].toString(), new DeltaEdit.Dense(), d);
        Path target = out("not-written");
        RecipeException e = assertThrows(RecipeException.class, () -> new DeltaApplication(options(2)).apply(
                m[1].toString(), List.of(new DeltaApplication.Part(d.toString(), 1)), target));
        assertTrue(e.getMessage().startsWith("delta " + d + " was taken from base " + m[0] + " (sha256:"), e.getMessage());
        assertTrue(e.getMessage().contains("not from " + m[1] + " (sha256:"), e.getMessage());
        assertFalse(Files.exists(target));
        assertThrows(IllegalArgumentException.class, () -> new DeltaEdit.Dare(1.0, DeltaEdit.DareRescale.INVERSE, 0));
    }

    @Test
    void composeAddsScaledDeltasAndApplyingTheSumEqualsApplyingTheParts() throws Exception {
        Path[] m = models(DType.F32);
        Path a = out("a");
        Path b = out("b");
        new DeltaExtraction(options(2)).run(m[0].toString(), m[1].toString(), new DeltaEdit.Dense(), a);
        new DeltaExtraction(options(2)).run(m[0].toString(), m[1].toString(),
                new DeltaEdit.BitDelta(DeltaEdit.Scope.ROW, Pattern.compile(""), DeltaEdit.EMBEDDINGS_AND_HEADS), b);
        List<DeltaApplication.Part> parts = List.of(new DeltaApplication.Part(a.toString(), 0.5),
                new DeltaApplication.Part(b.toString(), 0.25));
        Path composed = out("composed");
        new DeltaApplication(options(2)).compose(m[0].toString(), parts, composed);
        Path viaSum = out("via-sum");
        new DeltaApplication(options(2)).apply(m[0].toString(), List.of(new DeltaApplication.Part(composed.toString(), 1)), viaSum);
        Path direct = out("direct");
        new DeltaApplication(options(2)).apply(m[0].toString(), parts, direct);
        float[] x = tensor(viaSum, "model.safetensors", UP);
        float[] y = tensor(direct, "model.safetensors", UP);
        for (int i = 0; i < x.length; i++) {
            assertEquals(y[i], x[i], Math.ulp(y[i]) * 4, "element " + i);
        }
    }

    /**
     * A recipe may name deltas as models: a TIES merge of dense deltas equals the TIES merge of the fine-tunes
     * byte for byte, and one of BitDelta deltas equals the merge of those deltas applied.
     */
    @Test
    void aMergeReadsDeltasAsTheModelsTheyRebuild() throws Exception {
        List<TensorSpec> specs = SyntheticCheckpoints.llama(2, 16, 40, 32, DType.BF16);
        Path[] m = {SyntheticCheckpoints.write(dir.resolve("mb"), specs, (tensor, i) -> TestNoise.of(1, tensor, i)),
                SyntheticCheckpoints.write(dir.resolve("mt"), specs,
                        (tensor, i) -> TestNoise.of(1, tensor, i) + 0.02 * TestNoise.of(4, tensor, i))};
        Path other = SyntheticCheckpoints.write(dir.resolve("other"), specs,
                (tensor, i) -> TestNoise.of(1, tensor, i) - 0.02 * TestNoise.of(5, tensor, i));
        String base = m[0].toString();
        Path denseA = out("dense-a");
        Path denseB = out("dense-b");
        new DeltaExtraction(options(2)).run(base, m[1].toString(), new DeltaEdit.Dense(), denseA);
        new DeltaExtraction(options(2)).run(base, other.toString(), new DeltaEdit.Dense(), denseB);
        String ties = "merge_method: ties\nbase_model: %s\nmodels:\n  - model: %s\n    parameters: {weight: 0.6, density: 0.5}\n"
                + "  - model: %s\n    parameters: {weight: 0.4, density: 0.5}\n";
        Path full = merge(ties.formatted(base, m[1], other));
        Path viaDeltas = merge(ties.formatted(base, denseA, denseB));
        assertEquals(-1, Files.mismatch(full.resolve("model.safetensors"), viaDeltas.resolve("model.safetensors")));

        Path bitsA = out("bits-a");
        Path bitsB = out("bits-b");
        new DeltaExtraction(options(2)).run(base, m[1].toString(), DeltaEdit.BitDelta.defaults(), bitsA);
        new DeltaExtraction(options(2)).run(base, other.toString(), DeltaEdit.BitDelta.defaults(), bitsB);
        Path appliedA = out("applied-a");
        Path appliedB = out("applied-b");
        new DeltaApplication(options(2)).apply(base, List.of(new DeltaApplication.Part(bitsA.toString(), 1)), appliedA);
        new DeltaApplication(options(2)).apply(base, List.of(new DeltaApplication.Part(bitsB.toString(), 1)), appliedB);
        assertEquals(-1, Files.mismatch(merge(ties.formatted(base, appliedA, appliedB)).resolve("model.safetensors"),
                merge(ties.formatted(base, bitsA, bitsB)).resolve("model.safetensors")));
    }

    private Path merge(String yaml) throws Exception {
        Path out = out("merged");
        new MergeExecutor(options(2), p -> { }, new java.util.concurrent.atomic.AtomicBoolean())
                .run(io.modelmerge.engine.recipe.RecipeParser.parse(yaml), out);
        return out;
    }

    /** The delta operations as recipes (what the merge service and mergectl merge run): same bytes as the API. */
    @Test
    void deltaRecipesDoWhatTheOperationsDo() throws Exception {
        Path[] m = models(DType.BF16);
        Path viaApi = out("api");
        new DeltaExtraction(options(2)).run(m[0].toString(), m[1].toString(),
                new DeltaEdit.Dare(0.5, DeltaEdit.DareRescale.INVERSE, 9), viaApi);
        Path viaRecipe = out("recipe");
        MergeResult result = new MergeExecutor(options(2).withSeed(9), p -> { }, new java.util.concurrent.atomic.AtomicBoolean())
                .run(io.modelmerge.engine.recipe.RecipeParser.parse(("merge_method: delta_sparsify\nbase_model: %s\n"
                        + "models:\n  - model: %s\nparameters: {method: dare, p: 0.5}\n").formatted(m[0], m[1])), viaRecipe);
        assertEquals(-1, Files.mismatch(viaApi.resolve(DeltaManifest.WEIGHTS), viaRecipe.resolve(DeltaManifest.WEIGHTS)));
        assertTrue(result.files().contains(DeltaManifest.FILE_NAME) && result.notes().getFirst().startsWith("delta sparsify"),
                result.toString());
        RecipeException bad = assertThrows(RecipeException.class, () -> new MergeExecutor(options(2), p -> { },
                new java.util.concurrent.atomic.AtomicBoolean()).validate(io.modelmerge.engine.recipe.RecipeParser.parse(
                ("merge_method: delta_sparsify\nbase_model: %s\nmodels:\n  - model: %s\nparameters: {p: 1.5}\n")
                        .formatted(m[0], m[1]))));
        assertTrue(bad.getMessage().contains("p"), bad.getMessage());

        // include and exclude choose what BitDelta binarises, through a recipe as through the API
        Path bits = out("recipe-bits");
        new MergeExecutor(options(2), p -> { }, new java.util.concurrent.atomic.AtomicBoolean()).run(
                io.modelmerge.engine.recipe.RecipeParser.parse(("merge_method: delta_bitdelta\nbase_model: %s\n"
                        + "models:\n  - model: %s\nparameters: {include: 'mlp', exclude: 'down_proj'}\n")
                        .formatted(m[0], m[1])), bits);
        DeltaManifest manifest = DeltaManifest.parse("bits", Files.readAllBytes(bits.resolve(DeltaManifest.FILE_NAME)));
        for (DeltaManifest.TensorEntry t : manifest.tensors()) {
            boolean binarised = t.name().contains("mlp") && !t.name().contains("down_proj") && t.shape().length == 2;
            assertEquals(binarised ? Encoding.SIGNS : Encoding.DENSE, t.encoding().equals(Encoding.WHOLE)
                    ? Encoding.DENSE : t.encoding(), t.name());
        }
        RecipeException badRegex = assertThrows(RecipeException.class, () -> new MergeExecutor(options(2), p -> { },
                new java.util.concurrent.atomic.AtomicBoolean()).validate(io.modelmerge.engine.recipe.RecipeParser.parse(
                ("merge_method: delta_lowrank\nbase_model: %s\nmodels:\n  - model: %s\nparameters: {exclude: '(mlp'}\n")
                        .formatted(m[0], m[1]))));
        assertTrue(badRegex.getMessage().contains("exclude") && badRegex.getMessage().contains("(mlp"),
                badRegex.getMessage());
    }

    /** A delta job reports progress as merges do, and a cancelled one stops and leaves nothing behind. */
    @Test
    void extractionReportsProgressAndStopsWhenCancelled() throws Exception {
        Path[] m = models(DType.BF16);
        List<MergeProgress> reports = new java.util.concurrent.CopyOnWriteArrayList<>();
        Path done = out("progress");
        DeltaManifest manifest = new DeltaExtraction(options(2), reports::add, new java.util.concurrent.atomic.AtomicBoolean())
                .run(m[0].toString(), m[1].toString(), DeltaEdit.BitDelta.defaults(), done);
        MergeProgress last = reports.getLast();
        assertEquals(manifest.tensors().size(), last.tensorsDone());
        assertEquals(last.tensorsTotal(), last.tensorsDone());
        assertEquals(1.0, last.fraction());

        java.util.concurrent.atomic.AtomicBoolean cancelled = new java.util.concurrent.atomic.AtomicBoolean(true);
        Path never = out("cancelled");
        assertThrows(java.util.concurrent.CancellationException.class, () -> new DeltaExtraction(options(2), p -> { },
                cancelled).run(m[0].toString(), m[1].toString(), new DeltaEdit.Dense(), never));
        assertFalse(Files.exists(never));
        try (var left = Files.list(dir)) {
            assertTrue(left.noneMatch(p -> p.getFileName().toString().contains("cancelled")), "no staging left behind");
        }
    }
}
