package io.modelmerge.storage.blob;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.storage.testing.S3ProxyServer;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StorageResolverTest {

    @Test
    void storesOfOneResolverShareItsS3ClientAndClosingOneLeavesTheOthersWorking(@TempDir Path dir) throws Exception {
        byte[] content = "weights".getBytes();
        try (S3ProxyServer server = S3ProxyServer.start(dir.resolve("s3"), "models");
             StorageResolver storage = StorageResolver.unconfined(server.settings())) {
            Located first = storage.locate("s3://models/a/");
            first.store().write("model.safetensors", new ByteArrayInputStream(content));
            Located second = storage.locate("s3://models/a/model.safetensors");
            first.store().close();
            assertTrue(second.file());
            assertEquals("model.safetensors", second.key());
            try (InputStream in = second.store().read(second.key())) {
                assertArrayEquals(content, in.readAllBytes(), "the shared client outlives the store closed first");
            }
        }
    }

    @Test
    void schemesPickTheStoreAndTheRestAreRefused(@TempDir Path dir) throws Exception {
        Path model = Files.createDirectories(dir.resolve("model"));
        try (StorageResolver storage = StorageResolver.unconfined(S3Settings.defaults())) {
            assertEquals(model.toUri().toString(), storage.locate(model.toUri().toString()).store().root().toString());
            assertEquals(model.toUri().toString(), storage.locate(model.toString()).store().root().toString());
            for (String other : new String[] {"http://127.0.0.1:1/x", "gs://bucket/x", "hdfs://n/x"}) {
                assertThrows(UnsupportedLocationException.class, () -> storage.locate(other), other);
            }
        }
    }
}
