package io.modelmerge.storage.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.storage.blob.BlobCache;
import io.modelmerge.storage.blob.LocalBlobStore;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.safetensors.TensorInfo;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointWriterTest {

    /** A small llama-shaped model: 2 layers, BF16, in model order. */
    private static List<TensorSpec> model() {
        List<TensorSpec> specs = new ArrayList<>();
        specs.add(new TensorSpec("model.embed_tokens.weight", DType.BF16, new long[] {64, 16}));
        for (int layer = 0; layer < 2; layer++) {
            String p = "model.layers." + layer + ".";
            specs.add(new TensorSpec(p + "self_attn.q_proj.weight", DType.BF16, new long[] {16, 16}));
            specs.add(new TensorSpec(p + "mlp.up_proj.weight", DType.BF16, new long[] {32, 16}));
            specs.add(new TensorSpec(p + "input_layernorm.weight", DType.F32, new long[] {16}));
        }
        specs.add(new TensorSpec("lm_head.weight", DType.BF16, new long[] {64, 16}));
        return specs;
    }

    private static byte[] contentOf(TensorSpec spec) {
        byte[] bytes = new byte[Math.toIntExact(spec.byteLength())];
        new Random(spec.name().hashCode()).nextBytes(bytes);
        return bytes;
    }

    private static void writeAll(CheckpointWriter writer, List<TensorSpec> specs) throws IOException {
        for (TensorSpec spec : specs) {
            writer.write(spec.name(), 0, MemorySegment.ofArray(contentOf(spec)));
        }
    }

    @Test
    void aSmallMaxShardSizeGivesHfNamesAndAnIndexWithTheRightTotalSize(@TempDir Path dir) throws IOException {
        List<TensorSpec> specs = model();
        long total = specs.stream().mapToLong(TensorSpec::byteLength).sum();
        try (CheckpointWriter writer = CheckpointWriter.create(dir, specs, Map.of("format", "pt"), 2100)) {
            writeAll(writer, specs);
            writer.commit();
        }
        // embed 2048 | q 512 + up 1024 + ln 64 | q 512 + up 1024 + ln 64 | lm_head 2048
        List<String> expected = List.of("model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors");
        for (String name : expected) {
            assertTrue(Files.isRegularFile(dir.resolve(name)), name);
        }
        ShardIndex index = ShardIndex.parse("index", Files.readAllBytes(dir.resolve(ShardIndex.FILE_NAME)));
        assertEquals(total, index.totalSize());
        assertEquals("model-00004-of-00004.safetensors", index.weightMap().get("lm_head.weight"));
        assertEquals("model-00002-of-00004.safetensors", index.weightMap().get("model.layers.0.input_layernorm.weight"));
        String json = Files.readString(dir.resolve(ShardIndex.FILE_NAME));
        assertTrue(json.startsWith("{\n  \"metadata\": {\n    \"total_size\": " + total + "\n  },\n  \"weight_map\": {\n    \"lm_head.weight\": "), json);

        Checkpoint checkpoint = Checkpoint.open(new LocalBlobStore(dir), "");
        assertEquals(CheckpointFormat.SHARDED, checkpoint.format());
        assertEquals(total, checkpoint.tensorBytes());
        assertEquals(specs.size(), checkpoint.tensors().size());
        try (MappedCheckpoint mapped = checkpoint.map(new BlobCache(dir.resolve("cache"), 1 << 20))) {
            for (TensorSpec spec : specs) {
                byte[] read = mapped.tensor(spec.name()).data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
                assertArrayEquals(contentOf(spec), read, spec.name());
            }
        }
    }

    @Test
    void aCheckpointThatFitsOneShardIsASingleModelSafetensors(@TempDir Path dir) throws IOException {
        List<TensorSpec> specs = model();
        try (CheckpointWriter writer = CheckpointWriter.create(dir, specs, Map.of(), 5_000_000_000L)) {
            writeAll(writer, specs);
            writer.commit();
        }
        assertTrue(Files.isRegularFile(dir.resolve("model.safetensors")));
        assertFalse(Files.exists(dir.resolve(ShardIndex.FILE_NAME)));
        assertEquals(CheckpointFormat.SAFETENSORS, Checkpoint.open(new LocalBlobStore(dir), "").format());
    }

    @Test
    void aTensorLargerThanTheLimitGetsAShardOfItsOwn() {
        List<TensorSpec> specs = List.of(new TensorSpec("a", DType.F32, new long[] {10}),
                new TensorSpec("huge", DType.F32, new long[] {1000}), new TensorSpec("b", DType.F32, new long[] {10}));
        List<List<TensorSpec>> shards = CheckpointWriter.shards(specs, 100);
        assertEquals(List.of(List.of("huge"), List.of("a", "b")),
                shards.stream().map(s -> s.stream().map(TensorSpec::name).toList()).sorted((x, y) -> x.size() - y.size()).toList());
    }

    @Test
    void anUncommittedCheckpointLeavesNoFiles(@TempDir Path dir) throws IOException {
        List<TensorSpec> specs = model();
        try (CheckpointWriter writer = CheckpointWriter.create(dir, specs, Map.of(), 2100)) {
            writer.write(specs.getFirst().name(), 0, MemorySegment.ofArray(contentOf(specs.getFirst())));
        }
        try (var files = Files.list(dir)) {
            assertEquals(List.of(), files.toList());
        }
    }

    @Test
    void onlyTheFilesTheLayoutDefinesBelongToTheCheckpoint(@TempDir Path dir) throws IOException {
        List<TensorSpec> specs = List.of(new TensorSpec("w", DType.F32, new long[] {2}));
        try (CheckpointWriter writer = CheckpointWriter.create(dir, specs, Map.of(), 1 << 20)) {
            writeAll(writer, specs);
            writer.commit();
        }
        for (String name : List.of("config.json", "tokenizer_config.json", "README.md", "notes.txt", "secrets.json",
                "training_args.bin", "extra.safetensors", ".env")) {
            Files.writeString(dir.resolve(name), "{}");
        }
        Files.createDirectories(dir.resolve("checkpoint-500"));
        Files.writeString(dir.resolve("checkpoint-500/optimizer.pt"), "x");
        Checkpoint checkpoint = Checkpoint.open(new LocalBlobStore(dir), "");
        assertEquals(List.of("README.md", "config.json", "model.safetensors", "tokenizer_config.json"),
                checkpoint.layoutFiles().stream().map(b -> b.fileName()).toList());
        assertEquals(List.of("README.md", "config.json", "tokenizer_config.json"),
                checkpoint.tagAlongFiles().stream().map(b -> b.fileName()).toList());
        assertEquals(List.of(".env", "extra.safetensors", "notes.txt", "secrets.json", "training_args.bin"),
                checkpoint.ignoredFiles());
    }

    @Test
    void tagAlongFilesAreCopied(@TempDir Path dir) throws IOException {
        Path source = dir.resolve("source");
        Files.createDirectories(source);
        Files.writeString(source.resolve("config.json"), "{\"model_type\": \"llama\"}");
        Files.writeString(source.resolve("tokenizer.json"), "{}");
        List<TensorSpec> specs = List.of(new TensorSpec("w", DType.F32, new long[] {2}));
        try (CheckpointWriter writer = CheckpointWriter.create(source, specs, Map.of(), 1 << 20)) {
            writeAll(writer, specs);
            writer.commit();
        }
        Checkpoint checkpoint = Checkpoint.open(new LocalBlobStore(source), "");
        assertEquals(List.of("config.json", "tokenizer.json"),
                checkpoint.tagAlongFiles().stream().map(b -> b.fileName()).toList());
        Path out = dir.resolve("out");
        try (CheckpointWriter writer = CheckpointWriter.create(out, specs, Map.of(), 1 << 20)) {
            writeAll(writer, specs);
            writer.copyTagAlong(checkpoint.store(), checkpoint.tagAlongFiles());
            writer.commit();
        }
        assertEquals("{\"model_type\": \"llama\"}", Files.readString(out.resolve("config.json"), StandardCharsets.UTF_8));
    }

    @Test
    void anIndexThatNamesAMissingShardOrAWrongTensorIsRejected(@TempDir Path dir) throws IOException {
        List<TensorSpec> specs = model();
        try (CheckpointWriter writer = CheckpointWriter.create(dir, specs, Map.of(), 2100)) {
            writeAll(writer, specs);
            writer.commit();
        }
        Path index = dir.resolve(ShardIndex.FILE_NAME);
        String json = Files.readString(index);
        Files.writeString(index, json.replace("\"lm_head.weight\": \"model-00004-of-00004.safetensors\"",
                "\"lm_head.weight\": \"model-00001-of-00004.safetensors\""));
        InvalidCheckpointException wrong = assertThrows(InvalidCheckpointException.class,
                () -> Checkpoint.open(new LocalBlobStore(dir), ""));
        assertTrue(wrong.getMessage().contains("'lm_head.weight'"), wrong.getMessage());
        Files.writeString(index, json);
        Files.delete(dir.resolve("model-00003-of-00004.safetensors"));
        InvalidCheckpointException missing = assertThrows(InvalidCheckpointException.class,
                () -> Checkpoint.open(new LocalBlobStore(dir), ""));
        assertTrue(missing.getMessage().contains("model-00003-of-00004.safetensors, which is missing"), missing.getMessage());
    }

    @Test
    void rsloraAndPatternsChangeTheScaling() throws IOException {
        String json = """
                {"peft_type": "LORA", "r": 16, "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"],
                 "use_rslora": true, "rank_pattern": {"v_proj": 4}, "alpha_pattern": {"layers\\\\.0\\\\.self_attn\\\\.q_proj": 8},
                 "fan_in_fan_out": false, "modules_to_save": null}
                """;
        AdapterConfig config = AdapterConfig.parse("adapter_config.json", json.getBytes(StandardCharsets.UTF_8));
        assertEquals(32 / Math.sqrt(16), config.scalingFor("model.layers.1.self_attn.q_proj"), 1e-12);
        assertEquals(8 / Math.sqrt(16), config.scalingFor("model.layers.0.self_attn.q_proj"), 1e-12);
        assertEquals(32 / Math.sqrt(4), config.scalingFor("model.layers.3.self_attn.v_proj"), 1e-12);
        assertTrue(config.targets("model.layers.3.self_attn.v_proj"));
        assertFalse(config.targets("model.layers.3.self_attn.k_proj"));
        AdapterConfig regex = AdapterConfig.parse("c", "{\"r\": 8, \"target_modules\": \".*\\\\.(q|k)_proj\"}".getBytes(StandardCharsets.UTF_8));
        assertTrue(regex.targets("model.layers.0.self_attn.k_proj"));
        assertFalse(regex.targets("model.layers.0.self_attn.v_proj"));
        InvalidCheckpointException bad = assertThrows(InvalidCheckpointException.class,
                () -> AdapterConfig.parse("adapter_config.json", "{\"r\": 0}".getBytes(StandardCharsets.UTF_8)));
        assertTrue(bad.getMessage().contains("r must be a positive integer"), bad.getMessage());
    }

    @Test
    void aLoraFactorWithoutItsPartnerIsRejected(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("adapter_config.json"), "{\"r\": 2, \"lora_alpha\": 4, \"target_modules\": [\"q\"]}");
        List<io.modelmerge.storage.safetensors.Tensor> tensors = List.of(
                new io.modelmerge.storage.safetensors.Tensor(
                        new TensorInfo("base_model.model.layer.q.lora_A.weight", DType.F32, new long[] {2, 3}, 0, 24),
                        MemorySegment.ofArray(new byte[24])));
        io.modelmerge.storage.safetensors.SafetensorsWriter.write(dir.resolve("adapter_model.safetensors"), tensors, Map.of());
        InvalidCheckpointException e = assertThrows(InvalidCheckpointException.class,
                () -> Checkpoint.open(new LocalBlobStore(dir), ""));
        assertTrue(e.getMessage().contains("'base_model.model.layer.q.lora_A.weight' has no matching lora_B"), e.getMessage());
        try (SafetensorsFile file = SafetensorsFile.open(dir.resolve("adapter_model.safetensors"))) {
            assertEquals(1, file.tensors().size());
        }
    }
}
