package io.modelmerge.registry.content;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.modelmerge.registry.RegistryConfig;
import io.modelmerge.registry.model.RegistryException;
import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.ChecksumMismatchException;
import io.modelmerge.storage.blob.Located;
import io.modelmerge.storage.blob.OutsideRootsException;
import io.modelmerge.storage.checkpoint.AdapterConfig;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.checkpoint.CheckpointFormat;
import io.modelmerge.storage.checkpoint.InvalidCheckpointException;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsFormatException;
import io.modelmerge.storage.safetensors.TensorInfo;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Reads what a storage URI holds: opens the checkpoint there from its headers (ranged reads on S3), checksums
 * every file of the directory in one streaming pass each, and summarises the headers. Everything wrong with the
 * files becomes a 422 naming the file and the rule; nothing at the URI is a 400.
 */
@ApplicationScoped
public class ContentInspector {
    private static final List<String> CONFIG_FIELDS = List.of("model_type", "architectures", "torch_dtype",
            "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
            "vocab_size", "max_position_embeddings", "n_embd", "n_layer", "n_head", "n_positions");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final StorageLocations locations;
    private final ExecutorService digesters;

    public ContentInspector(StorageLocations locations, RegistryConfig config) {
        this.locations = locations;
        this.digesters = Executors.newFixedThreadPool(config.digestThreads(), Thread.ofPlatform().daemon()
                .name("registry-digest-", 0).factory());
    }

    /**
     * Inspects {@code uri} ({@code field} names it in errors). {@code expectedSha256} maps file paths to the
     * sha256 the caller claims; a file whose content differs is refused.
     */
    public StoredContent inspect(String field, String uri, Map<String, String> expectedSha256) {
        Located at = locations.locate(field, uri);
        BlobStore store = at.store();
        String dir = at.file() ? at.key().substring(0, at.key().lastIndexOf('/') + 1) : at.key();
        String normalized = StorageLocations.uriOf(store, at.key());
        try {
            boolean present = at.file() ? store.head(at.key()).isPresent() : !store.listDirectory(dir).isEmpty();
            if (!present) {
                throw RegistryException.badRequest(field, "nothing at '" + uri + "' (no such file, or an empty or"
                        + " missing directory)");
            }
            Checkpoint checkpoint = Checkpoint.open(store, at.key());
            // Only the files the checkpoint's layout defines make the version; the rest are listed, never read.
            List<BlobInfo> blobs = checkpoint.layoutFiles();
            List<StoredFile> files = digests(store, blobs, dir);
            checkExpected(field, normalized, files, expectedSha256);
            boolean allF32 = checkpoint.tensors().stream().allMatch(t -> t.dtype() == DType.F32);
            return new StoredContent(normalized, StorageLocations.uriOf(store, dir),
                    checkpoint.format() == CheckpointFormat.PEFT_ADAPTER, checkpoint.format() == CheckpointFormat.DELTA,
                    files, summarize(store, dir, blobs, checkpoint),
                    FileDigests.contentDigest(files), allF32);
        } catch (InvalidCheckpointException | SafetensorsFormatException | ChecksumMismatchException e) {
            throw RegistryException.unprocessable(field, e.getMessage());
        } catch (OutsideRootsException | FileNotFoundException e) {
            throw RegistryException.badRequest(field, e.getMessage());
        } catch (IOException e) {
            throw new UncheckedIOException("Reading " + uri + " failed: " + e.getMessage(), e);
        }
    }

    private List<StoredFile> digests(BlobStore store, List<BlobInfo> blobs, String dir) throws IOException {
        List<Future<StoredFile>> pending = new ArrayList<>();
        for (BlobInfo listed : blobs) {
            pending.add(digesters.submit(() -> {
                // The listing carries no checksum; HEAD returns the one the store keeps, if any.
                BlobInfo blob = store.head(listed.key()).orElseThrow(() ->
                        new FileNotFoundException(store.describe(listed.key()) + ": vanished while being registered"));
                return FileDigests.of(store, blob, blob.key().substring(dir.length()));
            }));
        }
        List<StoredFile> files = new ArrayList<>();
        try {
            for (Future<StoredFile> future : pending) {
                files.add(future.get());
            }
        } catch (ExecutionException e) {
            pending.forEach(f -> f.cancel(true));
            if (e.getCause() instanceof IOException io) {
                throw io;
            }
            throw new IllegalStateException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while checksumming", e);
        }
        return files;
    }

    private static void checkExpected(String field, String uri, List<StoredFile> files, Map<String, String> expected) {
        Map<String, StoredFile> byPath = new LinkedHashMap<>();
        files.forEach(f -> byPath.put(f.path(), f));
        for (var entry : expected.entrySet()) {
            StoredFile file = byPath.get(entry.getKey());
            if (file == null) {
                throw RegistryException.unprocessable(field, uri + ": expected file '" + entry.getKey()
                        + "' is missing (found " + String.join(", ", byPath.keySet()) + ")");
            }
            if (!file.sha256().equalsIgnoreCase(entry.getValue())) {
                throw RegistryException.unprocessable(field, uri + entry.getKey() + ": sha256 is " + file.sha256()
                        + ", expected " + entry.getValue());
            }
        }
    }

    private static ContentSummary summarize(BlobStore store, String dir, List<BlobInfo> blobs, Checkpoint checkpoint)
            throws IOException {
        Map<String, Long> dtypes = new TreeMap<>();
        for (TensorInfo t : checkpoint.tensors()) {
            dtypes.merge(t.dtype().name(), t.elementCount(), Long::sum);
        }
        Map<String, Object> config = null;
        String architecture = null;
        if (blobs.stream().anyMatch(b -> b.key().equals(dir + "config.json"))) {
            config = configFields(store, dir + "config.json");
            Object architectures = config.get("architectures");
            architecture = architectures instanceof List<?> list && !list.isEmpty() ? String.valueOf(list.getFirst())
                    : (String) config.get("model_type");
        }
        return new ContentSummary(checkpoint.tensors().size(), checkpoint.parameterCount(), checkpoint.tensorBytes(),
                dtypes, checkpoint.metadata(), architecture, config,
                checkpoint.adapterConfig().map(ContentInspector::adapterFields).orElse(null), checkpoint.ignoredFiles(),
                checkpoint.format() == CheckpointFormat.DELTA ? deltaFields(store, dir + Checkpoint.DELTA_MANIFEST) : null);
    }

    /** What a delta's manifest says that a user compares deltas by. */
    private static Map<String, Object> deltaFields(BlobStore store, String key) throws IOException {
        JsonNode m;
        try {
            m = JSON.readTree(store.readAllBytes(key));
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new InvalidCheckpointException(store.describe(key) + ": not a delta manifest (" + e.getOriginalMessage() + ")");
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("operation", m.path("operation").asText());
        out.put("parameters", JSON.convertValue(m.path("parameters"), Map.class));
        out.put("base", m.path("base").path("ref").asText());
        out.put("base_digest", m.path("base").path("digest").asText());
        out.put("fine_tune", m.path("fine_tune").path("ref").asText());
        long deltaBytes = m.path("delta_bytes").asLong();
        long fineTuneBytes = m.path("fine_tune_bytes").asLong();
        out.put("delta_bytes", deltaBytes);
        out.put("fine_tune_bytes", fineTuneBytes);
        out.put("compression_ratio", deltaBytes == 0 ? 0.0 : Math.round(1000.0 * fineTuneBytes / deltaBytes) / 1000.0);
        String worst = null;
        double error = -1;
        Map<String, Integer> encodings = new TreeMap<>();
        for (var t : m.path("tensors")) {
            encodings.merge(t.path("encoding").asText(), 1, Integer::sum);
            if (t.path("relative_error").isNumber() && t.path("relative_error").asDouble() > error) {
                error = t.path("relative_error").asDouble();
                worst = t.path("name").asText();
            }
        }
        out.put("encodings", encodings);
        if (worst != null) {
            out.put("worst_tensor", worst);
            out.put("worst_relative_error", error);
        }
        return out;
    }

    private static Map<String, Object> configFields(BlobStore store, String key) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(store.readAllBytes(key));
        } catch (IOException e) {
            throw new InvalidCheckpointException(store.describe(key) + ": not valid JSON: " + e.getMessage());
        }
        Map<String, Object> fields = new LinkedHashMap<>();
        for (String name : CONFIG_FIELDS) {
            JsonNode value = root.get(name);
            if (value != null && !value.isNull()) {
                fields.put(name, JSON.convertValue(value, Object.class));
            }
        }
        return fields;
    }

    private static Map<String, Object> adapterFields(AdapterConfig adapter) {
        Map<String, Object> fields = new LinkedHashMap<>();
        fields.put("peft_type", adapter.peftType());
        adapter.baseModel().ifPresent(b -> fields.put("base_model_name_or_path", b));
        adapter.taskType().ifPresent(t -> fields.put("task_type", t));
        fields.put("r", adapter.r());
        fields.put("lora_alpha", adapter.loraAlpha());
        fields.put("target_modules", adapter.targetModules());
        return fields;
    }

    @PreDestroy
    void close() {
        digesters.shutdownNow();
    }
}
