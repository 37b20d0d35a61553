package io.modelmerge.storage.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.storage.testing.TestTensors;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

class SafetensorsRoundTripTest {

    /** A shape whose element count ends on a byte boundary for every dtype, sub-byte ones included. */
    private static final long[] SHAPE = {3, 8};

    private static Tensor randomTensor(String name, DType dtype, long[] shape, Random random) {
        TensorSpec spec = new TensorSpec(name, dtype, shape);
        byte[] bytes = new byte[Math.toIntExact(spec.byteLength())];
        random.nextBytes(bytes);
        return new Tensor(new TensorInfo(name, dtype, shape, 0, bytes.length), MemorySegment.ofArray(bytes));
    }

    private static void assertSameTensors(List<Tensor> expected, SafetensorsFile file) {
        assertEquals(expected.size(), file.tensors().size());
        for (Tensor t : expected) {
            Tensor read = file.tensor(t.name());
            assertEquals(t.dtype(), read.dtype(), t.name());
            assertArrayEquals(t.info().shape(), read.info().shape(), t.name());
            assertEquals(-1, t.data().mismatch(read.data()), t.name() + " differs");
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void everyDtypeRoundTripsBitIdentically(DType dtype, @TempDir Path dir) throws IOException {
        Random random = new Random(dtype.ordinal());
        // A scalar of a sub-byte dtype would not fill a byte; those get a vector of 8 instead.
        long[] small = dtype.bits() % 8 == 0 ? new long[] {} : new long[] {8};
        List<Tensor> tensors = List.of(randomTensor("weight", dtype, SHAPE, random),
                randomTensor("small", dtype, small, random),
                randomTensor("empty", dtype, new long[] {0, 5}, random));
        Path path = dir.resolve("t.safetensors");
        SafetensorsWriter.write(path, tensors, Map.of("dtype", dtype.name()));
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            assertSameTensors(tensors, file);
            assertEquals(Map.of("dtype", dtype.name()), file.metadata());
        }
    }

    @Test
    void allDtypesTogetherRoundTripAndAreLaidOutByDescendingDtypeThenName(@TempDir Path dir) throws IOException {
        Random random = new Random(1);
        List<Tensor> tensors = new ArrayList<>();
        for (DType dtype : DType.values()) {
            tensors.add(randomTensor("t." + dtype.name().toLowerCase(), dtype, SHAPE, random));
            tensors.add(randomTensor("a." + dtype.name().toLowerCase(), dtype, new long[] {8}, random));
        }
        Collections.shuffle(tensors, random);
        Path path = dir.resolve("all.safetensors");
        SafetensorsWriter.write(path, tensors, Map.of());
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            assertSameTensors(tensors, file);
            List<TensorInfo> order = file.tensors();
            for (int i = 1; i < order.size(); i++) {
                TensorInfo prev = order.get(i - 1);
                TensorInfo next = order.get(i);
                assertTrue(prev.dtype().compareTo(next.dtype()) > 0
                        || prev.dtype() == next.dtype() && prev.name().compareTo(next.name()) < 0, prev + " then " + next);
            }
            assertEquals(0, file.header().dataStart() % 8, "data section starts 8-aligned");
        }
    }

    /** Golden files written by the reference implementation (src/test/resources/reference/make_reference_files.py). */
    @ParameterizedTest
    @ValueSource(strings = {"mixed-dtypes.safetensors", "no-metadata.safetensors"})
    void writesWhatTheReferenceImplementationWrites(String name, @TempDir Path dir) throws IOException {
        Path reference = dir.resolve(name);
        try (InputStream in = getClass().getResourceAsStream("/reference/" + name)) {
            Files.copy(in, reference);
        }
        try (SafetensorsFile file = SafetensorsFile.open(reference)) {
            List<Tensor> tensors = new ArrayList<>();
            for (TensorInfo t : file.tensors()) {
                tensors.add(file.tensor(t));
            }
            Collections.reverse(tensors);
            Path ours = dir.resolve("ours.safetensors");
            SafetensorsWriter.write(ours, tensors, file.metadata());
            assertArrayEquals(Files.readAllBytes(reference), Files.readAllBytes(ours));
            if (name.startsWith("mixed")) {
                assertArrayEquals(new long[] {}, file.tensor("scalar").info().shape());
                assertEquals(2.5f, TestTensors.floats(file.tensor("scalar"))[0]);
                assertTrue(file.header().contains("name with \"quotes\", \\ and \t tab"));
            }
        }
    }

    @Test
    void chunksWrittenConcurrentlyInAnyOrderMakeTheSameFile(@TempDir Path dir) throws Exception {
        Random random = new Random(3);
        List<Tensor> tensors = List.of(randomTensor("big", DType.BF16, new long[] {1000, 33}, random),
                randomTensor("small", DType.F32, new long[] {7}, random));
        Path whole = dir.resolve("whole.safetensors");
        SafetensorsWriter.write(whole, tensors, Map.of("format", "pt"));

        List<TensorSpec> specs = tensors.stream().map(t -> TensorSpec.of(t.info())).toList();
        Path chunked = dir.resolve("chunked.safetensors");
        try (SafetensorsWriter writer = SafetensorsWriter.create(chunked, SafetensorsLayout.of(specs, Map.of("format", "pt")));
             ExecutorService pool = Executors.newFixedThreadPool(4)) {
            List<Runnable> chunks = new ArrayList<>();
            for (Tensor t : tensors) {
                long size = t.data().byteSize();
                for (long offset = 0; offset < size; offset += 1000) {
                    long at = offset;
                    MemorySegment chunk = t.data().asSlice(at, Math.min(1000, size - at));
                    chunks.add(() -> {
                        try {
                            writer.write(t.name(), at, chunk);
                        } catch (IOException e) {
                            throw new RuntimeException(e);
                        }
                    });
                }
            }
            Collections.shuffle(chunks, random);
            List<Future<?>> done = new ArrayList<>();
            chunks.forEach(c -> done.add(pool.submit(c)));
            for (Future<?> f : done) {
                f.get();
            }
            writer.commit();
        }
        assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(chunked));
    }

    @Test
    void anIncompleteFileIsNeverVisible(@TempDir Path dir) throws IOException {
        Path path = dir.resolve("model.safetensors");
        TensorSpec spec = new TensorSpec("w", DType.F32, new long[] {4});
        try (SafetensorsWriter writer = SafetensorsWriter.create(path, SafetensorsLayout.of(List.of(spec), Map.of()))) {
            writer.write("w", 0, MemorySegment.ofArray(new byte[8]));
            IllegalStateException e = assertThrows(IllegalStateException.class, writer::commit);
            assertTrue(e.getMessage().contains("'w' has 8 of its 16 bytes written"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> writer.write("w", 12, MemorySegment.ofArray(new byte[8])));
        }
        assertFalse(Files.exists(path));
        try (var listing = Files.list(dir)) {
            assertEquals(0, listing.count(), "no partial file left behind");
        }
    }

    @Test
    void metadataKeepsItsOrder(@TempDir Path dir) throws IOException {
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("zeta", "1");
        metadata.put("alpha", "ü \"q\"\n");
        Path path = dir.resolve("m.safetensors");
        SafetensorsWriter.write(path, List.of(), metadata);
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            assertEquals(List.copyOf(metadata.entrySet()), List.copyOf(file.metadata().entrySet()));
        }
    }
}
