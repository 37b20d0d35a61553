package io.modelmerge.engine.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.delta.DeltaEdit;
import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.blob.LocalBlobStore;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.checkpoint.LoraModule;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.safetensors.TensorSpec;
import io.modelmerge.storage.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Deltas of a real PEFT adapter (../shared/fixtures/real/gpt2-lora-c_attn-r8-a, rank 8 on GPT-2's c_attn)
 * applied to a synthetic GPT-2-shaped base: extracted and applied back bit for bit, and factored back to rank 8
 * as a PEFT adapter whose B·A is the original's.
 */
class DeltaRealAdapterTest {
    @TempDir
    static Path dir;
    static Path base;
    static Path adapter;

    @BeforeAll
    static void writeGpt2ShapedBase() throws Exception {
        List<TensorSpec> specs = new ArrayList<>();
        for (int l = 0; l < 12; l++) {
            specs.add(new TensorSpec("transformer.h." + l + ".attn.c_attn.weight", DType.F32, new long[] {768, 2304}));
            specs.add(new TensorSpec("transformer.h." + l + ".ln_1.weight", DType.F32, new long[] {768}));
        }
        base = SyntheticCheckpoints.write(dir.resolve("gpt2-base"), specs,
                (tensor, i) -> ((tensor.hashCode() * 31 + (int) i) * 0x9E3779B1 >>> 8) / (double) (1 << 24) - 0.5);
        Files.writeString(base.resolve("config.json"), "{\"model_type\": \"gpt2\", \"n_layer\": 12}");
        adapter = Fixtures.real("gpt2-lora-c_attn-r8-a");
    }

    private static MergeOptions options() {
        return MergeOptions.defaults().withThreads(2).withMemory(256L << 20).withCache(dir.resolve("cache"), 1L << 30);
    }

    @Test
    void theAdaptedModelsDeltaAppliesBackBitForBit() throws Exception {
        String fineTune = base + "+" + adapter;
        Path delta = dir.resolve("delta");
        new DeltaExtraction(options()).run(base.toString(), fineTune, new DeltaEdit.Dense(), delta);
        Path rebuilt = dir.resolve("rebuilt");
        new DeltaApplication(options()).apply(base.toString(), List.of(new DeltaApplication.Part(delta.toString(), 1)),
                rebuilt);
        try (InputModel tuned = InputModel.open(fineTune, options(), new io.modelmerge.storage.blob.BlobCache(
                dir.resolve("cache"), 1L << 30)); SafetensorsFile back = SafetensorsFile.open(rebuilt.resolve("model.safetensors"))) {
            for (var t : tuned.tensors()) {
                float[] expected = new float[(int) t.elementCount()];
                tuned.source(t.name()).read(0, expected.length, expected);
                float[] got = Floats.widen(back.tensor(t.name()));
                for (int i = 0; i < expected.length; i++) {
                    if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(got[i])) {
                        throw new AssertionError(t.name() + "[" + i + "]: " + expected[i] + " vs " + got[i]);
                    }
                }
            }
        }
    }

    @Test
    void lowRankAtTheAdaptersRankRecoversItsProduct() throws Exception {
        Path out = dir.resolve("lowrank");
        List<MergeProgress> reports = new java.util.concurrent.CopyOnWriteArrayList<>();
        DeltaLowRank.Result result = new DeltaLowRank(options(), reports::add, new java.util.concurrent.atomic.AtomicBoolean())
                .run(base.toString(), base + "+" + adapter, DeltaLowRank.Spec.ofRank(8), out);
        assertEquals(12, result.ranks().size());
        assertEquals(1.0, reports.getLast().fraction());
        assertEquals(reports.getLast().tensorsTotal(), reports.getLast().tensorsDone());
        Path never = dir.resolve("lowrank-cancelled");
        assertThrows(java.util.concurrent.CancellationException.class, () -> new DeltaLowRank(options(), p -> { },
                new java.util.concurrent.atomic.AtomicBoolean(true)).run(base.toString(), base + "+" + adapter,
                DeltaLowRank.Spec.ofRank(8), never));
        assertFalse(Files.exists(never));
        assertTrue(result.ranks().values().stream().allMatch(r -> r == 8), result.ranks().toString());
        Checkpoint original = Checkpoint.open(new LocalBlobStore(adapter), "");
        Checkpoint extracted = Checkpoint.open(new LocalBlobStore(out), "");
        assertTrue(extracted.adapterConfig().orElseThrow().fanInFanOut());
        try (var a = original.map(new io.modelmerge.storage.blob.BlobCache(dir.resolve("c1"), 1L << 30));
             var b = extracted.map(new io.modelmerge.storage.blob.BlobCache(dir.resolve("c2"), 1L << 30))) {
            for (LoraModule want : original.loraModules()) {
                LoraModule got = extracted.loraModules().stream().filter(m -> m.module().equals(want.module())).findFirst()
                        .orElseThrow(() -> new AssertionError("no module " + want.module()));
                float[] p = product(Floats.widen(a.tensor(want.b().name())), Floats.widen(a.tensor(want.a().name())),
                        (int) want.b().dim(0), want.rank(), (int) want.a().dim(1), want.scaling());
                float[] q = product(Floats.widen(b.tensor(got.b().name())), Floats.widen(b.tensor(got.a().name())),
                        (int) got.b().dim(0), got.rank(), (int) got.a().dim(1), got.scaling());
                double largest = 0;
                double worst = 0;
                for (int i = 0; i < p.length; i++) {
                    largest = Math.max(largest, Math.abs(p[i]));
                    worst = Math.max(worst, Math.abs(p[i] - q[i]));
                }
                assertTrue(worst <= 1e-3 * largest, want.module() + ": worst " + worst + " of " + largest);
            }
        }
        RecipeException tooLarge = assertThrows(RecipeException.class, () -> new DeltaLowRank(options())
                .run(base.toString(), base + "+" + adapter, DeltaLowRank.Spec.ofRank(1000), dir.resolve("never")));
        assertTrue(tooLarge.getMessage().contains("max_rank 1000 is larger than tensor"), tooLarge.getMessage());
    }

    /** scale·B·A, B [out, r], A [r, in]. */
    private static float[] product(float[] b, float[] a, int out, int r, int in, double scale) {
        float[] p = new float[out * in];
        for (int o = 0; o < out; o++) {
            for (int k = 0; k < r; k++) {
                float bk = b[o * r + k];
                for (int i = 0; i < in; i++) {
                    p[o * in + i] += bk * a[k * in + i];
                }
            }
        }
        for (int i = 0; i < p.length; i++) {
            p[i] *= (float) scale;
        }
        return p;
    }
}
