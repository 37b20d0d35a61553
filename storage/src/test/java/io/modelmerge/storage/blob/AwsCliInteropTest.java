package io.modelmerge.storage.blob;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.testing.Fixtures;
import io.modelmerge.storage.testing.PatternInputStream;
import io.modelmerge.storage.testing.S3ProxyServer;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Objects cross between our S3 store and the AWS CLI (a real, independent S3 client) in both directions,
 * checksums included. The CLI must be installed (.ci/run installs it where it is missing).
 */
class AwsCliInteropTest {
    private static final String BUCKET = "interop";

    @TempDir
    static Path dir;
    private static S3ProxyServer server;
    private static S3BlobStore store;

    @BeforeAll
    static void start() throws Exception {
        server = S3ProxyServer.start(dir.resolve("s3"), BUCKET);
        store = S3BlobStore.open(URI.create("s3://" + BUCKET + "/"), server.settings());
        Files.writeString(dir.resolve("aws-config"), "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n");
    }

    @AfterAll
    static void stop() throws Exception {
        store.close();
        server.close();
    }

    private static String aws(String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("aws", "--endpoint-url", server.endpoint().toString()));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        Map<String, String> env = builder.environment();
        env.keySet().removeIf(k -> k.startsWith("AWS_"));
        env.put("AWS_ACCESS_KEY_ID", S3ProxyServer.ACCESS_KEY);
        env.put("AWS_SECRET_ACCESS_KEY", S3ProxyServer.SECRET_KEY);
        env.put("AWS_CONFIG_FILE", dir.resolve("aws-config").toString());
        env.put("AWS_SHARED_CREDENTIALS_FILE", dir.resolve("no-credentials").toString());
        Process process = builder.start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(process.waitFor(120, TimeUnit.SECONDS), "aws timed out: " + command);
        assertEquals(0, process.exitValue(), "aws " + String.join(" ", args) + " failed:\n" + output);
        return output;
    }

    @Test
    void theCliReadsWhatWeWroteAndSeesOurCrc32c() throws Exception {
        byte[] content = new PatternInputStream(5, 3_000_000).readAllBytes();
        BlobInfo written = store.write("ours/model.safetensors", content);
        Path downloaded = dir.resolve("downloaded.bin");
        aws("s3", "cp", "s3://" + BUCKET + "/ours/model.safetensors", downloaded.toString());
        assertArrayEquals(content, Files.readAllBytes(downloaded));
        String head = aws("s3api", "head-object", "--bucket", BUCKET, "--key", "ours/model.safetensors",
                "--checksum-mode", "ENABLED");
        assertTrue(head.contains("\"ChecksumCRC32C\": \"" + written.crc32c().orElseThrow() + "\""), head);
    }

    @Test
    void weReadACheckpointTheCliUploaded() throws Exception {
        Path fixture = Fixtures.real("gpt2-lora-b");
        aws("s3", "cp", "--recursive", fixture.toString(), "s3://" + BUCKET + "/cli/gpt2-lora-b/");
        Checkpoint remote = Checkpoint.open(store, "cli/gpt2-lora-b/");
        Checkpoint local = Checkpoint.open(new LocalBlobStore(fixture), "");
        assertEquals(local.tensors(), remote.tensors());
        assertEquals(local.adapterConfig(), remote.adapterConfig());
        assertArrayEquals(Files.readAllBytes(fixture.resolve("adapter_config.json")),
                store.readAllBytes("cli/gpt2-lora-b/adapter_config.json"));
    }
}
