package io.modelmerge.storage.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.storage.blob.LocalBlobStore;
import io.modelmerge.storage.checkpoint.AdapterConfig;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.checkpoint.CheckpointFormat;
import io.modelmerge.storage.checkpoint.LoraModule;
import io.modelmerge.storage.testing.FixtureManifest;
import io.modelmerge.storage.testing.FixtureManifest.ManifestEntry;
import io.modelmerge.storage.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The real checkpoints and adapters of ../shared/fixtures/real, against what their MANIFEST.md says of them. */
class RealFixturesTest {

    static List<ManifestEntry> manifest() throws IOException {
        return FixtureManifest.entries();
    }

    static Stream<ManifestEntry> safetensorsEntries() throws IOException {
        return manifest().stream().filter(e -> e.file().endsWith(".safetensors"));
    }

    @Test
    void manifestListsEveryFixtureFile() throws IOException {
        List<ManifestEntry> entries = manifest();
        try (Stream<Path> files = Files.walk(Fixtures.real())) {
            List<String> onDisk = files.filter(Files::isRegularFile)
                    .map(p -> Fixtures.real().relativize(p).toString())
                    .filter(p -> !p.equals("MANIFEST.md")).sorted().toList();
            assertEquals(onDisk, entries.stream().map(ManifestEntry::toString).sorted().toList());
        }
    }

    @ParameterizedTest
    @MethodSource("manifest")
    void fileSizeAndSha256MatchTheManifest(ManifestEntry entry) throws Exception {
        byte[] bytes = Files.readAllBytes(entry.path());
        assertEquals(entry.size(), bytes.length);
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        assertEquals(entry.sha256(), sha);
    }

    @ParameterizedTest
    @MethodSource("safetensorsEntries")
    void opensWithTheManifestsTensorsDtypesAndMetadata(ManifestEntry entry) throws IOException {
        try (SafetensorsFile file = SafetensorsFile.open(entry.path())) {
            assertEquals(entry.tensors(), file.tensors().size());
            Set<String> dtypes = new TreeSet<>();
            file.tensors().forEach(t -> dtypes.add(t.dtype().name()));
            assertEquals(entry.dtypes(), dtypes);
            if (entry.metadata().equals("None")) {
                assertTrue(file.metadata().isEmpty());
            } else {
                assertEquals(Map.of("format", "pt"), file.metadata());
                assertEquals("{'format': 'pt'}", entry.metadata());
            }
            long data = 0;
            for (TensorInfo t : file.tensors()) {
                assertEquals(t.elementCount() * 4, t.byteLength(), t.name());
                data += t.byteLength();
            }
            assertEquals(entry.size(), file.header().dataStart() + data);
        }
    }

    /** Files the reference implementation wrote (PEFT saves with {"format": "pt"}) come out byte for byte. */
    @ParameterizedTest
    @MethodSource("safetensorsEntries")
    void rewritingAReferenceFileReproducesItByteForByte(ManifestEntry entry, @TempDir Path dir) throws IOException {
        try (SafetensorsFile file = SafetensorsFile.open(entry.path())) {
            if (!file.metadata().equals(Map.of("format", "pt"))) {
                return; // written by tinygrad, not by the reference implementation: no byte layout to match
            }
            List<Tensor> tensors = new ArrayList<>();
            file.tensors().forEach(t -> tensors.add(file.tensor(t)));
            Path copy = dir.resolve("copy.safetensors");
            SafetensorsWriter.write(copy, tensors, file.metadata());
            assertArrayEquals(Files.readAllBytes(entry.path()), Files.readAllBytes(copy));
        }
    }

    @Test
    void gpt2AdaptersExposeTheirLoraModulesWithShapesFromTheirConfig() throws IOException {
        for (String name : List.of("gpt2-lora-c_attn-r8-a", "gpt2-lora-b")) {
            Checkpoint adapter = Checkpoint.open(new LocalBlobStore(Fixtures.real(name)), "");
            assertEquals(CheckpointFormat.PEFT_ADAPTER, adapter.format());
            AdapterConfig config = adapter.adapterConfig().orElseThrow();
            assertTrue(config.fanInFanOut());
            List<LoraModule> modules = adapter.loraModules();
            assertFalse(modules.isEmpty());
            for (LoraModule m : modules) {
                assertTrue(config.targets(m.module()), m.module());
                assertTrue(m.module().startsWith("transformer.h."), m.module());
                assertEquals(config.r(), m.rank());
                // gpt2: attn.c_attn 768 -> 2304, attn.c_proj 768 -> 768, mlp.c_proj 3072 -> 768
                long in = m.module().endsWith("mlp.c_proj") ? 3072 : 768;
                long out = m.module().endsWith("c_attn") ? 2304 : 768;
                assertEquals(in, m.a().dim(1), m.module());
                assertEquals(out, m.b().dim(0), m.module());
                // GPT-2's Conv1D keeps [in, out]: the delta B·A [out, in] is transposed onto it.
                assertArrayEquals(new long[] {in, out}, m.baseShape());
                assertEquals(config.loraAlpha() / config.r(), m.scaling(), 1e-12);
            }
        }
        Checkpoint a = Checkpoint.open(new LocalBlobStore(Fixtures.real("gpt2-lora-c_attn-r8-a")), "");
        assertEquals(12, a.loraModules().size());
        assertEquals(1.0, a.loraModules().getFirst().scaling(), 1e-12);
        assertEquals(List.of("base_model.model.score.weight"), a.savedModuleTensors().stream().map(TensorInfo::name).toList());
        Checkpoint b = Checkpoint.open(new LocalBlobStore(Fixtures.real("gpt2-lora-b")), "");
        assertEquals(36, b.loraModules().size()); // c_attn in 12 blocks, c_proj in attn and mlp of 12 blocks
        assertEquals(4.0, b.loraModules().getFirst().scaling(), 1e-12);
    }

    @Test
    void bertAndDistilbertAdaptersTargetTheirOwnModules() throws IOException {
        Checkpoint bert = Checkpoint.open(new LocalBlobStore(Fixtures.real("bert-lora-query-value")), "");
        assertEquals(24, bert.loraModules().size());
        assertTrue(bert.loraModules().stream().allMatch(m -> m.module().matches("bert\\.encoder\\.layer\\.\\d+\\.attention\\.self\\.(query|value)")));
        assertTrue(bert.loraModules().stream().allMatch(m -> m.scaling() == 4.0 && !m.fanInFanOut()));
        Checkpoint distil = Checkpoint.open(new LocalBlobStore(Fixtures.real("distilbert-lora-imdb")), "");
        assertTrue(distil.loraModules().stream().allMatch(m -> m.module().matches(".*\\.(q_lin|v_lin)") && m.scaling() == 2.0));
        assertArrayEquals(new long[] {768, 768}, distil.loraModules().getFirst().baseShape());
    }

    @Test
    void tinygradCheckpointOpensAsASingleFile() throws IOException {
        Checkpoint mnist = Checkpoint.open(new LocalBlobStore(Fixtures.real("mnist-tinygrad-full")), "");
        assertEquals(CheckpointFormat.SAFETENSORS, mnist.format());
        assertEquals(List.of("l1.weight", "l2.weight"), mnist.tensors().stream().map(TensorInfo::name).toList());
        assertArrayEquals(new long[] {10, 128}, mnist.tensor("l2.weight").orElseThrow().shape());
        assertEquals(mnist.tensorBytes() / 4, mnist.parameterCount());
    }
}
