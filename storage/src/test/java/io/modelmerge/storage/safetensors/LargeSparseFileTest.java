package io.modelmerge.storage.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.storage.testing.TestTensors;
import java.io.RandomAccessFile;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A file past 4 GiB maps as one segment: 5 GiB of (sparse, never written) data, then real tensors at the end. */
class LargeSparseFileTest {
    private static final long PADDING = 5L << 30;

    @Test
    void opensAFiveGibFileAndReadsTheTensorsAtItsEnd(@TempDir Path dir) throws Exception {
        SafetensorsLayout layout = SafetensorsLayout.of(List.of(
                new TensorSpec("padding", DType.U64, new long[] {PADDING / 8}),
                new TensorSpec("tail.weight", DType.F32, new long[] {2, 2}),
                new TensorSpec("tail.bias", DType.F32, new long[] {3})), Map.of("format", "pt"));
        // U64 sorts before F32, so the padding comes first and the small tensors sit past 5 GiB.
        assertEquals("padding", layout.tensors().getFirst().name());
        float[] weight = {1.5f, -2f, 3.25f, 4f};
        float[] bias = {0.5f, 0.25f, -0.125f};
        Path path = dir.resolve("big.safetensors");
        try (RandomAccessFile raf = new RandomAccessFile(path.toFile(), "rw")) {
            byte[] json = layout.headerJson();
            raf.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length).array());
            raf.write(json);
            raf.setLength(layout.fileSize()); // the padding stays a hole: nothing written for it
            for (var entry : Map.of("tail.weight", weight, "tail.bias", bias).entrySet()) {
                raf.seek(layout.dataStart() + layout.tensor(entry.getKey()).orElseThrow().begin());
                raf.write(littleEndian(entry.getValue()));
            }
        }
        assertTrue(Files.size(path) > PADDING);
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            assertEquals(Files.size(path), file.header().fileSize());
            assertEquals(PADDING, file.tensor("padding").data().byteSize());
            assertArrayEquals(weight, TestTensors.floats(file.tensor("tail.weight")));
            assertArrayEquals(bias, TestTensors.floats(file.tensor("tail.bias")));
            assertEquals(0L, file.tensor("padding").data().get(ValueLayout.JAVA_LONG_UNALIGNED, PADDING - 8));
            assertTrue(file.header().dataStart() + file.tensor("tail.bias").info().begin() > (5L << 30));
        }
    }

    private static byte[] littleEndian(float[] values) {
        ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            buffer.putFloat(v);
        }
        return buffer.array();
    }
}
