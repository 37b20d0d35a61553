package io.modelmerge.storage.blob;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.FileNotFoundException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/** What every {@link BlobStore} does; each implementation's test runs it against a real store. */
abstract class BlobStoreContract {

    abstract BlobStore store();

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void writesReadsAndReportsSizeAndCrc32c() throws Exception {
        byte[] content = utf8("hello, checkpoints");
        BlobInfo written = store().write("models/a/config.json", content);
        assertEquals(content.length, written.size());
        assertEquals(Optional.of(Crc32c.of(content, 0, content.length)), written.crc32c());
        assertArrayEquals(content, store().readAllBytes("models/a/config.json"));
        assertEquals(content.length, store().head("models/a/config.json").orElseThrow().size());
        assertEquals(Optional.empty(), store().head("models/a/missing.json"));
    }

    @Test
    void readsRanges() throws Exception {
        store().write("r/data.bin", utf8("0123456789"));
        assertArrayEquals(utf8("345"), store().readRange("r/data.bin", 3, 3));
        try (var in = store().read("r/data.bin", 7, -1)) {
            assertArrayEquals(utf8("789"), in.readAllBytes());
        }
        try (var in = store().read("r/data.bin", 0, 0)) {
            assertEquals(0, in.readAllBytes().length);
        }
    }

    @Test
    void aDownloadUrlServesTheObjectWithoutOurCredentials() throws Exception {
        byte[] content = utf8("weights for someone else");
        store().write("shared/model.safetensors", content);
        try (var in = store().downloadUrl("shared/model.safetensors", Duration.ofMinutes(5)).toURL().openStream()) {
            assertArrayEquals(content, in.readAllBytes());
        }
    }

    @Test
    void readingAMissingObjectNamesIt() {
        FileNotFoundException e = assertThrows(FileNotFoundException.class, () -> store().readAllBytes("nope/x.bin"));
        assertTrue(e.getMessage().contains("nope/x.bin"), e.getMessage());
    }

    @Test
    void listsByPrefixInKeyOrderAndDeletes() throws Exception {
        store().write("l/b/2.bin", utf8("2"));
        store().write("l/a/1.bin", utf8("1"));
        store().write("l/a/0.bin", utf8("00"));
        store().write("other/x.bin", utf8("x"));
        assertEquals(List.of("l/a/0.bin", "l/a/1.bin", "l/b/2.bin"), store().list("l/").stream().map(BlobInfo::key).toList());
        assertEquals(2, store().list("l/a/").getFirst().size());
        store().delete("l/a/0.bin");
        store().delete("l/a/never-existed.bin");
        assertEquals(List.of("l/a/1.bin"), store().list("l/a/").stream().map(BlobInfo::key).toList());
    }

    @Test
    void writeIfAbsentWritesOnceAndKeepsTheFirstContent() throws Exception {
        assertTrue(store().writeIfAbsent("c/once.json", new ByteArrayInputStream(utf8("first"))).isPresent());
        assertFalse(store().writeIfAbsent("c/once.json", new ByteArrayInputStream(utf8("second"))).isPresent());
        assertArrayEquals(utf8("first"), store().readAllBytes("c/once.json"));
    }

    @Test
    void concurrentWriteIfAbsentHasExactlyOneWinner() throws Exception {
        int writers = 8;
        List<Future<Optional<BlobInfo>>> results = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(writers)) {
            for (int i = 0; i < writers; i++) {
                byte[] content = utf8("writer-" + i);
                results.add(pool.submit(() -> store().writeIfAbsent("race/marker", new ByteArrayInputStream(content))));
            }
        }
        int winners = 0;
        String winner = null;
        for (int i = 0; i < writers; i++) {
            if (results.get(i).get().isPresent()) {
                winners++;
                winner = "writer-" + i;
            }
        }
        assertEquals(1, winners);
        assertEquals(winner, new String(store().readAllBytes("race/marker"), StandardCharsets.UTF_8));
    }
}
