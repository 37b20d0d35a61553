package io.modelmerge.engine.exec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.safetensors.TensorInfo;
import io.modelmerge.storage.testing.TorchFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A recipe naming PyTorch {@code .bin} checkpoints merges them exactly as it merges the same weights in safetensors. */
class TorchInputsTest {
    @TempDir
    Path dir;

    /** The same model as a {@code pytorch_model.bin} (written as torch.save lays it out) with its config. */
    private Path asTorch(Path safetensorsModel, String name) throws Exception {
        Path out = Files.createDirectories(dir.resolve(name));
        List<TorchFiles.Entry> entries = new ArrayList<>();
        try (SafetensorsFile file = SafetensorsFile.open(safetensorsModel.resolve("model.safetensors"))) {
            for (TensorInfo t : file.tensors()) {
                entries.add(new TorchFiles.Entry(t.name(), t.dtype(), t.shape(), file.tensor(t).data().toArray(
                        java.lang.foreign.ValueLayout.JAVA_BYTE)));
            }
        }
        TorchFiles.write(out.resolve("pytorch_model.bin"), entries);
        Files.copy(safetensorsModel.resolve("config.json"), out.resolve("config.json"));
        return out;
    }

    private Path merge(String yaml, String name) throws Exception {
        Path out = dir.resolve(name);
        new MergeExecutor(MergeOptions.defaults().withThreads(2).withMemory(64L << 20).withCache(dir.resolve("cache"), 1L << 30),
                p -> { }, new AtomicBoolean()).run(RecipeParser.parse(yaml), out);
        return out;
    }

    @Test
    void binCheckpointsMergeAsTheirSafetensorsDo() throws Exception {
        Path base = SyntheticCheckpoints.write(dir.resolve("base"), SyntheticCheckpoints.llama(2, 16, 32, 40, DType.BF16),
                (tensor, i) -> TestNoise.of(1, tensor, i));
        Path tuned = SyntheticCheckpoints.write(dir.resolve("tuned"), SyntheticCheckpoints.llama(2, 16, 32, 40, DType.BF16),
                (tensor, i) -> TestNoise.of(2, tensor, i));
        Path baseBin = asTorch(base, "base-bin");
        Path tunedBin = asTorch(tuned, "tuned-bin");
        String recipe = "merge_method: ties\nbase_model: %s\nmodels:\n  - model: %s\n    parameters: {weight: 0.7, density: 0.5}\n"
                + "  - model: %s\n    parameters: {weight: 0.4, density: 0.3}\n";
        Path fromSafetensors = merge(recipe.formatted(base, base, tuned), "out-st");
        Path fromBin = merge(recipe.formatted(baseBin, baseBin, tunedBin.resolve("pytorch_model.bin")), "out-bin");
        assertArrayEquals(Files.readAllBytes(fromSafetensors.resolve("model.safetensors")),
                Files.readAllBytes(fromBin.resolve("model.safetensors")));
        assertEquals(Files.readString(base.resolve("config.json")), Files.readString(fromBin.resolve("config.json")));
    }
}
