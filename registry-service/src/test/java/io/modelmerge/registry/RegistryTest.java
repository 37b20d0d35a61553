package io.modelmerge.registry;

import static io.restassured.RestAssured.given;

import io.modelmerge.registry.content.StorageLocations;
import io.modelmerge.storage.blob.BlobStore;
import io.quarkus.test.common.QuarkusTestResource;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import jakarta.inject.Inject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/** What the registry's HTTP tests share: the servers, a local blob root, and the calls they make most. */
@QuarkusTestResource(RegistryTestResources.class)
abstract class RegistryTest {
    private static final AtomicInteger UNIQUE = new AtomicInteger();

    @Inject
    RegistryConfig config;

    @Inject
    StorageLocations locations;

    /** A directory under the local blob root that no other test uses. */
    Path localDir(String name) throws IOException {
        Path dir = config.allowedLocalRoots().getFirst().resolve(name + "-" + UNIQUE.incrementAndGet());
        Files.createDirectories(dir);
        return dir;
    }

    /** A name no other test uses, for models and S3 prefixes. */
    static String unique(String name) {
        return name + "-" + UNIQUE.incrementAndGet();
    }

    /** The S3 store of the test bucket. */
    BlobStore bucket() {
        return locations.locate("uri", "s3://" + RegistryTestResources.BUCKET + "/").store();
    }

    static Response createModel(String name) {
        return given().contentType(ContentType.JSON).body(Map.of("name", name)).post("/api/v1/models");
    }

    static Response register(String model, Object body) {
        return given().contentType(ContentType.JSON).body(body).post("/api/v1/models/" + model + "/versions");
    }

    static Response register(String model, String storageUri) {
        return register(model, Map.of("storage_uri", storageUri));
    }
}
