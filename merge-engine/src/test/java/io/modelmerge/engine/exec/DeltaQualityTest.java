package io.modelmerge.engine.exec;

import static io.modelmerge.engine.testing.DigitsMlp.accuracy;
import static io.modelmerge.engine.testing.DigitsMlp.init;
import static io.modelmerge.engine.testing.DigitsMlp.save;
import static io.modelmerge.engine.testing.DigitsMlp.train;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.delta.DeltaEdit;
import io.modelmerge.engine.delta.DeltaManifest;
import io.modelmerge.engine.testing.DigitsMlp.Digits;
import io.modelmerge.storage.blob.BlobCache;
import io.modelmerge.storage.safetensors.TensorInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Each delta format's quality on a model trained here on real data (../shared/fixtures/data/digits): a
 * 64-32-10 MLP trained on the digits 0–4 (the base), then on all ten (the fine-tune); each format's
 * reconstruction is scored on held-out digits beside the fine-tune's own accuracy, and the table printed.
 */
class DeltaQualityTest {
    private static final int HIDDEN = 32;
    private static final int ROWS = 1797;

    @TempDir
    Path dir;

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
            double a = accuracy(load(delta.toString()), data, trainRows, ROWS);
            scores.put(e.getKey(), a);
            table.append(String.format(Locale.ROOT, "%-18s %9.4f %8d %.2fx%n", e.getKey(), a, m.deltaBytes(),
                    m.compressionRatio()));
        }
        for (int rank : new int[] {2, 8}) {
            Path adapter = dir.resolve(title.hashCode() + "-lora-" + rank);
            new DeltaLowRank(options).run(base.toString(), tuned.toString(),
                    new DeltaLowRank.Spec(rank, 0, 0, java.util.regex.Pattern.compile(""), java.util.regex.Pattern.compile("^$")),
                    adapter);
            double a = accuracy(load(base + "+" + adapter), data, trainRows, ROWS);
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
        Map<String, float[]> w = init(HIDDEN, 7);
        train(w, data, trainRows, label -> label < 5, 300, 0.5f);
        Path base = save(w, dir.resolve("base"));
        double baseAccuracy = accuracy(w, data, trainRows, ROWS);
        train(w, data, trainRows, label -> true, 300, 0.5f);
        Path tuned = save(w, dir.resolve("tuned"));
        double tunedAccuracy = accuracy(w, data, trainRows, ROWS);
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
        Map<String, float[]> w = init(HIDDEN, 11);
        train(w, data, trainRows, label -> true, 60, 0.5f);
        Path base = save(w, dir.resolve("base"));
        double baseAccuracy = accuracy(w, data, trainRows, ROWS);
        train(w, data, trainRows, label -> true, 100, 0.2f);
        Path tuned = save(w, dir.resolve("tuned"));
        double tunedAccuracy = accuracy(w, data, trainRows, ROWS);
        Map<String, Double> scores = score(base, tuned, baseAccuracy, tunedAccuracy, data, trainRows,
                "small delta: fine-tuned further on 0-9");
        for (String format : List.of("dare p=0.5", "magnitude 0.2", "bitdelta", "bitdelta per row", "lowrank 8")) {
            assertTrue(Math.abs(scores.get(format) - tunedAccuracy) < 0.03, format + " is within 3 points of the"
                    + " fine-tune (" + tunedAccuracy + "): " + scores);
        }
    }
}
