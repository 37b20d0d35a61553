package io.modelmerge.storage.blob;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Local paths a service may read: under its roots, lexically and through every symbolic link. */
class LocalRootsTest {
    private static final String SETTING = "test.local-roots";

    @TempDir
    Path dir;
    private Path root;
    private Path outside;
    private LocalRoots roots;

    @BeforeEach
    void layOut() throws Exception {
        root = Files.createDirectories(dir.resolve("root"));
        outside = Files.createDirectories(dir.resolve("outside"));
        Files.writeString(outside.resolve("secret.txt"), "the secret");
        roots = LocalRoots.only(List.of(root), SETTING);
    }

    @Test
    void pathsOutsideTheRootsAreRefusedBeforeAnythingIsRead() {
        for (String path : List.of("/etc/", "/etc/shadow", "/proc/self/environ", "/usr/", root + "/../outside/",
                root + "/../outside/secret.txt", outside.toString())) {
            OutsideRootsException e = assertThrows(OutsideRootsException.class,
                    () -> new StorageResolver(S3Settings.defaults(), roots).locate(path), path);
            assertEquals("'" + path + "' is outside the local directories this service may read (" + SETTING + ")",
                    e.getMessage());
        }
        OutsideRootsException uri = assertThrows(OutsideRootsException.class,
                () -> new StorageResolver(S3Settings.defaults(), roots).locate("file:///etc/"));
        assertTrue(uri.getMessage().startsWith("'file:///etc/' is outside"), uri.getMessage());
        assertThrows(UnsupportedLocationException.class,
                () -> new StorageResolver(S3Settings.defaults(), roots).locate("http://127.0.0.1:1/x"));
    }

    @Test
    void symbolicLinksThatLeaveTheRootAreRefusedWhereverTheyAre() throws Exception {
        Files.createSymbolicLink(root.resolve("linked-dir"), outside);
        OutsideRootsException viaDirectory = assertThrows(OutsideRootsException.class,
                () -> roots.locate(root.resolve("linked-dir/secret.txt"), "linked-dir/secret.txt"));
        assertTrue(viaDirectory.getMessage().contains("leads out of the local directories"), viaDirectory.getMessage());
        // A path that does not exist behind the link is refused the same way: no existence oracle either.
        OutsideRootsException missing = assertThrows(OutsideRootsException.class,
                () -> roots.locate(root.resolve("linked-dir/nothing"), "linked-dir/nothing"));
        assertEquals(viaDirectory.getMessage().replace("secret.txt", "nothing"), missing.getMessage());

        Path model = Files.createDirectories(root.resolve("model"));
        Files.createSymbolicLink(model.resolve("model.safetensors"), Path.of("/proc/self/environ"));
        Files.createSymbolicLink(model.resolve("notes.txt"), outside.resolve("secret.txt"));
        Located located = roots.locate(model, "model");
        assertEquals("model/", located.key());
        BlobStore store = located.store();
        for (String key : List.of("model/model.safetensors", "model/notes.txt")) {
            OutsideRootsException e = assertThrows(OutsideRootsException.class, () -> store.read(key).readAllBytes(), key);
            assertTrue(e.getMessage().contains("is a symbolic link leading out of the local directories this service may"
                    + " read (" + SETTING + ")"), e.getMessage());
            assertFalse(e.getMessage().contains("the secret"));
            assertThrows(OutsideRootsException.class, () -> store.head(key));
            assertTrue(store.localFile(key).isEmpty());
        }
    }

    @Test
    void linksInsideTheRootAreFollowedAsTheHubCacheNeeds() throws Exception {
        // huggingface_hub's cache: snapshots/<revision>/<file> links to ../../blobs/<sha256>
        Path blobs = Files.createDirectories(root.resolve("hub/blobs"));
        Files.write(blobs.resolve("abc123"), new byte[] {1, 2, 3});
        Path snapshot = Files.createDirectories(root.resolve("hub/snapshots/main"));
        Files.createSymbolicLink(snapshot.resolve("model.safetensors"), Path.of("../../blobs/abc123"));
        Located located = roots.locate(snapshot, "snapshot");
        assertArrayEquals(new byte[] {1, 2, 3}, located.store().readAllBytes(located.key() + "model.safetensors"));
        assertEquals(blobs.resolve("abc123").toRealPath(),
                located.store().localFile(located.key() + "model.safetensors").orElseThrow());
    }

    @Test
    void aDirectoryIsListedWithoutItsSubdirectories() throws Exception {
        Path model = Files.createDirectories(root.resolve("m"));
        Files.writeString(model.resolve("config.json"), "{}");
        Files.writeString(model.resolve("model.safetensors"), "x");
        Files.createDirectories(model.resolve("deep/deeper"));
        Files.writeString(model.resolve("deep/deeper/other.safetensors"), "y");
        Located located = roots.locate(model, "m");
        assertEquals(List.of("m/config.json", "m/model.safetensors"),
                located.store().listDirectory(located.key()).stream().map(BlobInfo::key).toList());
    }

    @Test
    void anywhereReadsAnyPathAsTheCommandLineDoes() throws Exception {
        Located located = LocalRoots.anywhere().locate(outside.resolve("secret.txt"), "secret.txt");
        assertTrue(located.file());
        assertEquals("the secret", new String(located.store().readAllBytes(located.key())));
    }
}
