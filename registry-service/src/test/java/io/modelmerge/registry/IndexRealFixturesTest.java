package io.modelmerge.registry;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.testing.FixtureManifest.ManifestEntry;
import io.modelmerge.storage.testing.FixtureManifest;
import io.modelmerge.storage.testing.Fixtures;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import java.io.InputStream;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** The real fixtures, uploaded to S3 and indexed: the registry's summaries must match the files and MANIFEST.md. */
@QuarkusTest
class IndexRealFixturesTest extends RegistryTest {

    @Test
    void indexingAPrefixRegistersEveryRealCheckpointWithSummariesThatMatchTheFiles() throws Exception {
        String prefix = unique("hub");
        BlobStore bucket = bucket();
        List<ManifestEntry> manifest = FixtureManifest.entries();
        for (ManifestEntry entry : manifest) {
            bucket.write(prefix + "/" + entry.folder() + "/" + entry.file(), Files.readAllBytes(entry.path()));
        }
        byte[] mnist = Files.readAllBytes(Fixtures.real("mnist-tinygrad-full").resolve("model.safetensors"));
        bucket.write(prefix + "/broken/model.safetensors", Arrays.copyOf(mnist, 1000));
        bucket.write(prefix + "/pickled/pytorch_model.bin", new byte[] {1, 2, 3});
        bucket.write(prefix + "/docs/README.md", "not a model".getBytes());

        JsonPath task = index(prefix);
        List<String> folders = manifest.stream().map(ManifestEntry::folder).distinct().sorted().toList();
        assertEquals("SUCCEEDED", task.getString("state"), task.prettify());
        assertEquals(folders.size() + 2, task.getInt("report.found"));
        assertEquals(folders.stream().map(f -> prefix + "/" + f + "@1").sorted().toList(),
                task.getList("report.registered.ref", String.class).stream().sorted().toList());
        Map<String, String> skipped = skippedReasons(task);
        assertTrue(skipped.get("s3://models/" + prefix + "/broken/").contains("model.safetensors"), skipped.toString());
        assertTrue(skipped.get("s3://models/" + prefix + "/pickled/").contains("no safetensors checkpoint"),
                skipped.toString());

        for (String folder : folders) {
            List<ManifestEntry> files = manifest.stream().filter(e -> e.folder().equals(folder)).toList();
            ManifestEntry weights = files.stream().filter(e -> e.file().endsWith(".safetensors")).findFirst().orElseThrow();
            JsonPath version = given().get("/api/v1/models/" + prefix + "/" + folder + "/versions/1").then()
                    .statusCode(200).extract().jsonPath();
            assertEquals(weights.tensors(), version.getInt("summary.tensor_count"), folder);
            assertEquals(weights.dtypes(), version.getMap("summary.dtypes").keySet(), folder);
            // All fixtures are F32: parameters = bytes after the header / 4, read straight off the file.
            long parameters = dataBytes(weights.path()) / 4;
            assertEquals(parameters, version.getLong("summary.parameter_count"), folder);
            assertEquals(parameters, version.getLong("summary.dtypes.F32"), folder);
            assertEquals(folder.contains("lora") ? "peft_adapter" : "checkpoint", version.getString("format"));
            Map<String, String> sums = files.stream().collect(Collectors.toMap(ManifestEntry::file, ManifestEntry::sha256));
            assertEquals(sums, version.getList("files", Map.class).stream().collect(Collectors.toMap(
                    f -> (String) f.get("path"), f -> (String) f.get("sha256"))), folder);
            if (folder.contains("lora")) {
                assertEquals(8, version.getInt("summary.adapter.r"), folder);
            }
        }
        given().get("/api/v1/models/" + prefix + "/gpt2-lora-b/versions/1").then()
                .body("summary.adapter.lora_alpha", equalTo(32.0f))
                .body("summary.adapter.base_model_name_or_path", equalTo("gpt2"))
                .body("storage_uri", equalTo("s3://models/" + prefix + "/gpt2-lora-b/"));

        // The presigned URL serves the file to a client without credentials.
        String url = given().get("/api/v1/models/" + prefix + "/mnist-tinygrad-full/versions/1/files").then()
                .statusCode(200).extract().jsonPath().getString("[0].download_url");
        assertTrue(url.startsWith("http://127.0.0.1:"), url);
        try (InputStream in = URI.create(url).toURL().openStream()) {
            assertTrue(Arrays.equals(mnist, in.readAllBytes()));
        }

        // Indexing again registers nothing new: the same content is the same version.
        JsonPath again = index(prefix);
        assertEquals(0, again.getList("report.registered").size());
        assertEquals("same content as " + prefix + "/gpt2-lora-b@1",
                skippedReasons(again).get("s3://models/" + prefix + "/gpt2-lora-b/"));
    }

    @Test
    void indexRequestsAreChecked() {
        given().contentType(ContentType.JSON).body(Map.of("uri", "s3://models/x/", "namespace", "Bad NS"))
                .post("/api/v1/index").then().statusCode(400).body("errors[0].field", equalTo("namespace"));
        given().contentType(ContentType.JSON).body(Map.of("uri", "file:///etc/", "namespace", "ok"))
                .post("/api/v1/index").then().statusCode(400).body("errors[0].field", equalTo("uri"));
        given().get("/api/v1/index/not-a-task").then().statusCode(404);
    }

    private static JsonPath index(String prefix) throws InterruptedException {
        String location = given().contentType(ContentType.JSON)
                .body(Map.of("uri", "s3://models/" + prefix + "/", "namespace", prefix))
                .post("/api/v1/index").then().statusCode(202).extract().header("Location");
        for (int i = 0; i < 600; i++) {
            JsonPath task = given().get(location).then().statusCode(200).extract().jsonPath();
            if (!task.getString("state").equals("RUNNING")) {
                return task;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("index task " + location + " did not finish in 60 s");
    }

    private static Map<String, String> skippedReasons(JsonPath task) {
        return task.getList("report.skipped", Map.class).stream().collect(Collectors.toMap(
                s -> (String) s.get("storage_uri"), s -> (String) s.get("reason")));
    }

    private static long dataBytes(Path file) throws Exception {
        byte[] bytes = Files.readAllBytes(file);
        long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        return bytes.length - 8 - headerLength;
    }
}
