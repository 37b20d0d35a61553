package io.modelmerge.storage.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.storage.blob.LocalBlobStore;
import io.modelmerge.storage.blob.S3BlobStore;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.checkpoint.CheckpointFormat;
import io.modelmerge.storage.checkpoint.InvalidCheckpointException;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.testing.S3ProxyServer;
import io.modelmerge.storage.testing.TorchFiles;
import io.modelmerge.storage.testing.TorchFiles.Pickle;
import java.io.InputStream;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * PyTorch pickle checkpoints: read without running the pickle, converted to safetensors byte for byte, and
 * refused by name when the pickle asks for anything tensor rebuilding does not need.
 */
class TorchCheckpointsTest {
    @TempDir
    Path dir;

    private static float[] floats(SafetensorsFile file, String name) {
        ByteBuffer b = file.tensor(name).data().asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    private static byte[] le(float... values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            b.putFloat(v);
        }
        return b.array();
    }

    @Test
    void stateDictsPickledByCPythonAreReadAsTorchLoadsThem() throws Exception {
        for (String name : List.of("state_dict_p2", "state_dict_p4")) {
            Path bin = dir.resolve(name + ".bin");
            try (InputStream in = getClass().getResourceAsStream("/torch/" + name + ".bin")) {
                Files.copy(in, bin);
            }
            Path out = dir.resolve(name + ".safetensors");
            try (TorchArchive archive = TorchArchive.open(bin, name)) {
                assertEquals(List.of("model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
                        "model.layers.0.mlp.up_proj.weight", "model.position_ids"),
                        archive.tensors().stream().map(TorchTensor::name).toList());
                archive.writeSafetensors(out);
            }
            try (SafetensorsFile file = SafetensorsFile.open(out)) {
                float[] shared = new float[12];
                for (int i = 0; i < 12; i++) {
                    shared[i] = i * 0.5f - 3;
                }
                assertArrayEquals(shared, floats(file, "model.embed_tokens.weight"), name);
                assertArrayEquals(shared, floats(file, "lm_head.weight"), name);
                assertArrayEquals(new float[] {1.5f, 2f, 2.5f}, floats(file, "model.norm.weight"), name);
                assertArrayEquals(new long[] {4, 3}, file.tensor("lm_head.weight").info().shape());
                ByteBuffer bf16 = file.tensor("model.layers.0.mlp.up_proj.weight").data().asByteBuffer()
                        .order(ByteOrder.LITTLE_ENDIAN);
                assertEquals(DType.BF16, file.tensor("model.layers.0.mlp.up_proj.weight").dtype());
                float[] widened = new float[6];
                for (int i = 0; i < 6; i++) {
                    widened[i] = Float.intBitsToFloat((bf16.getShort(2 * i) & 0xFFFF) << 16);
                }
                assertArrayEquals(new float[] {1f, -2.5f, 0.15625f, 3f, 0.0009994507f, -7f}, widened, name);
                ByteBuffer ids = file.tensor("model.position_ids").data().asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
                assertEquals(DType.I64, file.tensor("model.position_ids").dtype());
                assertEquals(List.of(7L, -1L, 1L << 40), List.of(ids.getLong(0), ids.getLong(8), ids.getLong(16)));
            }
        }
    }

    /** Refusals: each pickle is written in the test; the message names what was refused. */
    @Test
    void picklesAskingForMoreThanTensorsAreRefusedByNameAndNothingRuns() throws Exception {
        Path canary = dir.resolve("canary");
        Map<String, Consumer<Pickle>> cases = new java.util.LinkedHashMap<>();
        cases.put("names the global 'os.system'", p -> p.proto(2).global("os", "system").mark()
                .unicode("touch " + canary).tuple().reduce().stop());
        cases.put("names the global 'posix.system'", p -> p.proto(4).op(0x8c).op(5).raw("posix").op(0x8c).op(6)
                .raw("system").op(0x93).mark().unicode("touch " + canary).tuple().reduce().stop());
        cases.put("names the global 'builtins.eval'", p -> p.proto(2).global("builtins", "eval").mark()
                .unicode("1").tuple().reduce().stop());
        cases.put("calls torch.FloatStorage, which is not a function rebuilding tensors", p -> p.proto(2)
                .global("torch", "FloatStorage").emptyTuple().reduce().stop());
        cases.put("uses pickle opcode 0x69", p -> p.proto(2).mark().op('i').raw("os\nsystem\n").stop());
        cases.put("has a persistent id", p -> p.proto(2).mark().unicode("evil").tuple().persistentId().stop());
        cases.put("reaches past its storage", p -> p.proto(2).global("collections", "OrderedDict").emptyTuple()
                .reduce().mark().unicode("w").global("torch._utils", "_rebuild_tensor_v2").mark()
                .mark().unicode("storage").global("torch", "FloatStorage").unicode("0").unicode("cpu").integer(4)
                .tuple().persistentId().integer(0).integers(new long[] {3, 3}).integers(new long[] {3, 1})
                .bool(false).emptyTuple().tuple().reduce().setItems().stop());
        cases.put("ends inside an opcode", p -> p.proto(2).op('J').raw("\u0001\u0000"));
        cases.put("declares a string of 16 bytes with 3 left", p -> p.proto(2).op('X').raw("\u0010\u0000\u0000\u0000abc"));
        cases.put("holds a list, not a state dict", p -> p.proto(2).op(']').stop());
        for (var c : cases.entrySet()) {
            Pickle pickle = new Pickle();
            c.getValue().accept(pickle);
            Path bin = TorchFiles.archive(dir.resolve("evil.bin"), "archive", pickle.bytes(), Map.of("0", le(1, 2, 3, 4)));
            InvalidCheckpointException e = assertThrows(InvalidCheckpointException.class,
                    () -> TorchArchive.open(bin, "evil.bin").close(), c.getKey());
            assertTrue(e.getMessage().startsWith("evil.bin (archive/data.pkl): the pickle ")
                    && e.getMessage().contains(c.getKey()), e.getMessage());
            Files.delete(bin);
        }
        assertFalse(Files.exists(canary), "nothing in a refused pickle ran");
    }

    @Test
    void archivesThatAreNotStateDictsTorchWritesAreRefusedWithTheReason() throws Exception {
        Path legacy = Files.write(dir.resolve("legacy.bin"), new byte[] {(byte) 0x80, 2, (byte) 0x8a, 10});
        assertTrue(assertThrows(InvalidCheckpointException.class, () -> TorchArchive.open(legacy, "legacy.bin"))
                .getMessage().contains("not a zip archive; a checkpoint torch.save wrote before PyTorch 1.6"));

        Path missing = TorchFiles.archive(dir.resolve("missing.bin"), "archive", tensorPickle(new long[] {2}, new long[] {1}),
                Map.of());
        try (TorchArchive archive = TorchArchive.open(missing, "missing.bin")) {
            assertEquals("missing.bin: tensor 'w' is in storage '0', which the archive does not hold",
                    assertThrows(InvalidCheckpointException.class, () -> archive.writeSafetensors(dir.resolve("m.st")))
                            .getMessage());
        }
        Path strided = TorchFiles.archive(dir.resolve("strided.bin"), "archive",
                tensorPickle(new long[] {2, 2}, new long[] {1, 2}), Map.of("0", le(1, 2, 3, 4)));
        try (TorchArchive archive = TorchArchive.open(strided, "strided.bin")) {
            assertEquals("strided.bin: tensor 'w' is a strided view (size [2, 2], stride [1, 2]); only contiguous"
                    + " tensors are read", assertThrows(InvalidCheckpointException.class,
                    () -> archive.writeSafetensors(dir.resolve("s.st"))).getMessage());
        }
        assertFalse(Files.exists(dir.resolve("s.st")), "no half-written output");
        Path shortStorage = TorchFiles.archive(dir.resolve("short.bin"), "archive", tensorPickle(new long[] {4},
                new long[] {1}), Map.of("0", le(1, 2)));
        try (TorchArchive archive = TorchArchive.open(shortStorage, "short.bin")) {
            assertEquals("short.bin: tensor 'w' needs bytes [0, 16) of storage '0', which has 8",
                    assertThrows(InvalidCheckpointException.class, () -> archive.writeSafetensors(dir.resolve("t.st")))
                            .getMessage());
        }
    }

    /** One F32 tensor 'w' of the given size and stride over a 4-element storage '0'. */
    private static byte[] tensorPickle(long[] size, long[] stride) {
        return new Pickle().proto(2).global("collections", "OrderedDict").emptyTuple().reduce().mark().unicode("w")
                .global("torch._utils", "_rebuild_tensor_v2").mark().mark().unicode("storage")
                .global("torch", "FloatStorage").unicode("0").unicode("cpu").integer(4).tuple().persistentId()
                .integer(0).integers(size).integers(stride).bool(false).emptyTuple().tuple().reduce().setItems().stop()
                .bytes();
    }

    private Path shardedCheckpoint(Path at) throws Exception {
        Files.createDirectories(at);
        TorchFiles.write(at.resolve("pytorch_model-00001-of-00002.bin"), List.of(
                new TorchFiles.Entry("a.weight", DType.F32, new long[] {2, 2}, le(1, 2, 3, 4))));
        TorchFiles.write(at.resolve("pytorch_model-00002-of-00002.bin"), List.of(
                new TorchFiles.Entry("b.weight", DType.F32, new long[] {3}, le(5, 6, 7)),
                new TorchFiles.Entry("c.bias", DType.F32, new long[] {1}, le(8))));
        Files.writeString(at.resolve("pytorch_model.bin.index.json"), """
                {"metadata": {"total_size": 32}, "weight_map": {"a.weight": "pytorch_model-00001-of-00002.bin",
                 "b.weight": "pytorch_model-00002-of-00002.bin", "c.bias": "pytorch_model-00002-of-00002.bin"}}""");
        Files.writeString(at.resolve("config.json"), "{\"model_type\": \"llama\"}");
        return at;
    }

    @Test
    void aShardedCheckpointIsConvertedOnceWithItsIndexAndTagAlongs() throws Exception {
        Path model = shardedCheckpoint(dir.resolve("model"));
        LocalBlobStore store = new LocalBlobStore(model);
        assertTrue(TorchCheckpoints.isTorch(store, ""));
        Path converted = TorchCheckpoints.converted(store, "", dir.resolve("work"));
        Checkpoint checkpoint = Checkpoint.open(new LocalBlobStore(converted), "");
        assertEquals(CheckpointFormat.SHARDED, checkpoint.format());
        assertEquals(List.of("a.weight", "b.weight", "c.bias"), checkpoint.tensors().stream().map(t -> t.name()).sorted().toList());
        assertEquals("pytorch_model-00002-of-00002.safetensors", checkpoint.fileOf("c.bias").orElseThrow().blob().fileName());
        assertEquals(List.of("config.json"), checkpoint.tagAlongFiles().stream().map(b -> b.fileName()).toList());
        try (SafetensorsFile file = SafetensorsFile.open(converted.resolve("pytorch_model-00002-of-00002.safetensors"))) {
            assertArrayEquals(new float[] {5, 6, 7}, floats(file, "b.weight"));
        }
        long stamp = Files.getLastModifiedTime(converted.resolve("pytorch_model-00001-of-00002.safetensors")).toMillis();
        Thread.sleep(20);
        assertEquals(converted, TorchCheckpoints.converted(store, "", dir.resolve("work")));
        assertEquals(stamp, Files.getLastModifiedTime(converted.resolve("pytorch_model-00001-of-00002.safetensors"))
                .toMillis(), "the second open reuses the first conversion");
        try (var left = Files.list(dir.resolve("work"))) {
            assertEquals(List.of(converted), left.toList(), "nothing partial is left behind");
        }
    }

    @Test
    void aCheckpointInS3IsDownloadedConvertedAndTheDownloadDeleted() throws Exception {
        Path model = shardedCheckpoint(dir.resolve("model"));
        try (S3ProxyServer server = S3ProxyServer.start(dir.resolve("s3"), "models");
             S3BlobStore store = S3BlobStore.open(URI.create("s3://models/m/"), server.settings())) {
            try (var files = Files.list(model)) {
                for (Path f : files.toList()) {
                    store.write(f.getFileName().toString(), Files.readAllBytes(f));
                }
            }
            assertTrue(TorchCheckpoints.isTorch(store, ""));
            Path converted = TorchCheckpoints.converted(store, "", dir.resolve("work"));
            Checkpoint checkpoint = Checkpoint.open(new LocalBlobStore(converted), "");
            assertEquals(3, checkpoint.tensors().size());
            try (var left = Files.list(dir.resolve("work"))) {
                assertEquals(List.of(converted), left.toList());
            }
        }
    }
}
