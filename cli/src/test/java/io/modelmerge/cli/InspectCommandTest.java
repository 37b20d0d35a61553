package io.modelmerge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.modelmerge.storage.blob.S3BlobStore;
import io.modelmerge.storage.testing.Fixtures;
import io.modelmerge.storage.testing.S3ProxyServer;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class InspectCommandTest {

    record Result(int exitCode, String out, String err) {
    }

    private static Result mergectl(Map<String, String> env, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Mergectl.run(env, new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Result(code, out.toString(), err.toString());
    }

    private static Result mergectl(String... args) {
        return mergectl(Map.of(), args);
    }

    /** Counts from ../shared/fixtures/real/MANIFEST.md; parameters are the F32 data bytes / 4. */
    @ParameterizedTest
    @CsvSource({
            "bert-lora-query-value, peft_adapter, 50, adapter_model.safetensors",
            "distilbert-lora-imdb, peft_adapter, 28, adapter_model.safetensors",
            "gpt2-lora-b, peft_adapter, 72, adapter_model.safetensors",
            "gpt2-lora-c_attn-r8-a, peft_adapter, 25, adapter_model.safetensors",
            "mnist-tinygrad-full, safetensors, 2, model.safetensors"})
    void inspectsEveryRealFixtureAsJson(String name, String format, int tensors, String file) throws Exception {
        Result result = mergectl("inspect", "--json", Fixtures.real(name).toString());
        assertEquals(0, result.exitCode(), result.err());
        JsonNode json = new ObjectMapper().readTree(result.out());
        assertEquals(format, json.get("format").asText());
        assertEquals(tensors, json.get("tensor_count").asInt());
        assertEquals(tensors, json.get("dtypes").get("F32").asInt());
        long size = Files.size(Fixtures.real(name).resolve(file));
        assertEquals(size, json.get("file_bytes").asLong());
        long headerEnd = 8 + java.nio.ByteBuffer.wrap(Files.readAllBytes(Fixtures.real(name).resolve(file)), 0, 8)
                .order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(size - headerEnd, json.get("tensor_bytes").asLong());
        assertEquals((size - headerEnd) / 4, json.get("parameter_count").asLong());
        assertEquals(tensors, json.get("tensors").size());
        assertEquals(format.equals("peft_adapter") ? "pt" : null,
                json.get("metadata").has("format") ? json.get("metadata").get("format").asText() : null);
    }

    @Test
    void printsAReadableSummary() {
        Result result = mergectl("inspect", Fixtures.real("gpt2-lora-b").toString());
        assertEquals(0, result.exitCode(), result.err());
        assertTrue(result.out().contains("format:      peft_adapter"), result.out());
        assertTrue(result.out().contains("tensors:     72"), result.out());
        assertTrue(result.out().contains("LoRA r=8 alpha=32.0 targets=[c_attn, c_proj] fan_in_fan_out=true"), result.out());
        assertTrue(result.out().lines().anyMatch(l -> l.matches(
                "\\s+base_model\\.model\\.transformer\\.h\\.11\\.mlp\\.c_proj\\.lora_B\\.weight\\s+F32\\s+\\[768, 8]")),
                result.out());
        assertEquals("", result.err());
    }

    @Test
    void aMalformedFileExitsNonZeroWithOneLineNamingFileAndProblem(@TempDir Path dir) throws Exception {
        Path bad = dir.resolve("broken.safetensors");
        byte[] real = Files.readAllBytes(Fixtures.real("mnist-tinygrad-full").resolve("model.safetensors"));
        Files.write(bad, Arrays.copyOf(real, 100));
        Result result = mergectl("inspect", bad.toString());
        assertEquals(Mergectl.BAD_INPUT, result.exitCode());
        assertEquals("", result.out());
        assertEquals("mergectl: " + bad + ": header length 152 runs past the end of the file (100 bytes)"
                + System.lineSeparator(), result.err());
    }

    @Test
    void aMissingPathIsOneLineToo(@TempDir Path dir) {
        Result result = mergectl("inspect", dir.resolve("nothing-here").toString());
        assertEquals(Mergectl.BAD_INPUT, result.exitCode());
        assertEquals(1, result.err().lines().count(), result.err());
        assertTrue(result.err().contains("nothing-here: nothing here"), result.err());
    }

    @Test
    void inspectsAnS3PrefixWithSettingsFromTheEnvironment(@TempDir Path dir) throws Exception {
        try (S3ProxyServer server = S3ProxyServer.start(dir.resolve("s3"), "hub");
             S3BlobStore store = S3BlobStore.open(URI.create("s3://hub/adapters/gpt2-a/"), server.settings())) {
            Path fixture = Fixtures.real("gpt2-lora-c_attn-r8-a");
            for (String file : new String[] {"adapter_config.json", "adapter_model.safetensors"}) {
                store.write(file, Files.readAllBytes(fixture.resolve(file)));
            }
            Map<String, String> env = Map.of("AWS_ENDPOINT_URL", server.endpoint().toString(),
                    "AWS_ACCESS_KEY_ID", S3ProxyServer.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY", S3ProxyServer.SECRET_KEY);
            Result result = mergectl(env, "inspect", "--json", "s3://hub/adapters/gpt2-a/");
            assertEquals(0, result.exitCode(), result.err());
            JsonNode json = new ObjectMapper().readTree(result.out());
            assertEquals("s3://hub/adapters/gpt2-a/", json.get("location").asText());
            assertEquals(25, json.get("tensor_count").asInt());
            assertEquals(12, json.get("adapter").get("lora_module_count").asInt());
        }
    }
}
