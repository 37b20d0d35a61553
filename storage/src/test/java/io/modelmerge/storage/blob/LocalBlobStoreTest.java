package io.modelmerge.storage.blob;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LocalBlobStoreTest extends BlobStoreContract {
    @TempDir
    Path root;
    private LocalBlobStore store;

    @BeforeEach
    void open() {
        store = new LocalBlobStore(root);
    }

    @Override
    BlobStore store() {
        return store;
    }

    @Test
    void refusesKeysThatLeaveTheRoot() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> store.head("../etc/passwd"));
        assertTrue(e.getMessage().contains("../etc/passwd"), e.getMessage());
    }

    @Test
    void servesItsFilesForMappingWithoutACopy() throws Exception {
        store.write("m/model.safetensors", new byte[] {1, 2, 3});
        assertEquals(root.resolve("m/model.safetensors"), store.localFile("m/model.safetensors").orElseThrow());
        assertTrue(store.root().toString().startsWith("file:/"));
    }

    @Test
    void theTemporaryFileOfAWriteACrashInterruptedIsHiddenAndCanBeDeleted() throws Exception {
        store.write("m/model.safetensors", new byte[] {1, 2, 3});
        java.nio.file.Files.write(root.resolve("m/.model.safetensors12345.blobtmp"), new byte[] {4});
        assertEquals(java.util.List.of("m/model.safetensors"), store.list("").stream().map(BlobInfo::key).toList());
        assertEquals(1, store.deleteAbandonedWrites());
        assertEquals(java.util.List.of("model.safetensors"), java.nio.file.Files.list(root.resolve("m"))
                .map(p -> p.getFileName().toString()).toList());
    }
}
