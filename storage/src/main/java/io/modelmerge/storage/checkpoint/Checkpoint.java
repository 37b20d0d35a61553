package io.modelmerge.storage.checkpoint;

import io.modelmerge.storage.blob.BlobCache;
import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsHeader;
import io.modelmerge.storage.safetensors.TensorInfo;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * A checkpoint found in a blob store: its format, its safetensors files with their headers, its tag-along
 * files (config.json, tokenizer files, ...) and, for an adapter, its config. Opening one reads headers only
 * (ranged reads on S3) and lists the directory itself, not its subdirectories; {@link #map} makes the tensor
 * data readable. Files of the directory that no checkpoint layout defines are listed as ignored, never read.
 */
public final class Checkpoint {
    /** The weights file of a single-file checkpoint, as transformers names it. */
    public static final String SINGLE_FILE = "model.safetensors";
    /** The weights file of a PEFT adapter. */
    public static final String ADAPTER_WEIGHTS = "adapter_model.safetensors";
    /** What PEFT puts before the base model's tensor names when it saves an adapter. */
    public static final String PEFT_PREFIX = "base_model.model.";
    /** A stored delta's manifest, tensors and exact values ({@link CheckpointFormat#DELTA}). */
    public static final String DELTA_MANIFEST = "delta.json";
    public static final String DELTA_WEIGHTS = "delta.safetensors";
    public static final String DELTA_EXACT = "delta-exact.safetensors";

    /**
     * The tag-along files that record how this checkpoint itself was made (its card, recipe, a search's report, a
     * statistic's settings): part of its version, never carried into what is made from it.
     */
    public static final Set<String> PROVENANCE_NAMES = Set.of("README.md", "merge_recipe.yml", "fisher.json",
            "gram.json", "greedy_soup.json", "evolve.json", "evolved_recipe.yml");

    /**
     * The files beside the weights that a Hugging Face checkpoint or PEFT adapter defines: configs, tokenizer
     * files, the model card and our merge recipe (the index and adapter config belong to their layouts), and the
     * rest of the {@link #PROVENANCE_NAMES}.
     */
    public static final Set<String> TAG_ALONG_NAMES = Stream.concat(Stream.of("config.json",
            "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "added_tokens.json", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "vocab.json",
            "vocab.txt", "merges.txt", "chat_template.jinja", "chat_template.json", "preprocessor_config.json",
            "processor_config.json", "mergekit_config.yml"), PROVENANCE_NAMES.stream())
            .collect(Collectors.toUnmodifiableSet());

    /** One safetensors file of a checkpoint and its header. */
    public record ShardFile(BlobInfo blob, SafetensorsHeader header) {
    }

    private final BlobStore store;
    private final String location;
    private final CheckpointFormat format;
    private final List<ShardFile> files;
    private final Map<String, ShardFile> fileOfTensor;
    private final List<BlobInfo> layoutFiles;
    private final List<BlobInfo> tagAlong;
    private final List<String> ignored;
    private final Optional<AdapterConfig> adapter;

    private Checkpoint(BlobStore store, String location, CheckpointFormat format, List<ShardFile> files,
                       Layout layout, Optional<AdapterConfig> adapter) throws InvalidCheckpointException {
        this.store = store;
        this.location = location;
        this.format = format;
        this.files = List.copyOf(files);
        this.layoutFiles = List.copyOf(layout.files());
        this.tagAlong = List.copyOf(layout.tagAlong());
        this.ignored = List.copyOf(layout.ignored());
        this.adapter = adapter;
        Map<String, ShardFile> index = new LinkedHashMap<>();
        for (ShardFile file : this.files) {
            for (TensorInfo t : file.header().tensors()) {
                ShardFile previous = index.put(t.name(), file);
                if (previous != null) {
                    throw new InvalidCheckpointException(location + ": tensor '" + t.name() + "' is in both "
                            + previous.blob().key() + " and " + file.blob().key());
                }
            }
        }
        this.fileOfTensor = Collections.unmodifiableMap(index);
    }

    /**
     * Finds the checkpoint at {@code path} in {@code store}: a {@code .safetensors} file, or a directory
     * ({@code ""} for the store's root) holding a single file, a sharded checkpoint or a PEFT adapter.
     */
    public static Checkpoint open(BlobStore store, String path) throws IOException {
        if (path.endsWith(".safetensors")) {
            return openFile(store, path);
        }
        String dir = path.isEmpty() || path.endsWith("/") ? path : path + "/";
        String location = store.describe(dir);
        Map<String, BlobInfo> children = new TreeMap<>();
        for (BlobInfo blob : store.listDirectory(dir)) {
            children.put(blob.key().substring(dir.length()), blob);
        }
        if (children.containsKey(AdapterConfig.FILE_NAME)) {
            return openAdapter(store, location, children);
        }
        if (children.containsKey(DELTA_MANIFEST)) {
            return openDelta(store, location, children);
        }
        Optional<String> indexName = children.keySet().stream().filter(n -> n.endsWith(".safetensors.index.json"))
                .findFirst();
        if (indexName.isPresent()) {
            return openSharded(store, location, children, indexName.get());
        }
        List<String> safetensors = children.keySet().stream().filter(n -> n.endsWith(".safetensors")).toList();
        String single = children.containsKey(SINGLE_FILE) ? SINGLE_FILE
                : safetensors.size() == 1 ? safetensors.getFirst() : null;
        if (single == null) {
            throw new InvalidCheckpointException(location + (children.isEmpty()
                    ? ": nothing here (no such directory or prefix, or it is empty)"
                    : ": no safetensors checkpoint here (found " + String.join(", ", children.keySet()) + ")"
                    + (children.keySet().stream().anyMatch(n -> n.endsWith(".bin"))
                    ? "; PyTorch .bin weights are read by merges, which convert them, but not indexed here" : "")));
        }
        return new Checkpoint(store, location, CheckpointFormat.SAFETENSORS,
                List.of(readShard(store, children.get(single))), Layout.of(children, List.of(single)), Optional.empty());
    }

    /** Opens the single safetensors file {@code key}, whatever its name. */
    public static Checkpoint openFile(BlobStore store, String key) throws IOException {
        BlobInfo file = store.head(key).orElseThrow(() ->
                new InvalidCheckpointException(store.describe(key) + ": no such file"));
        return new Checkpoint(store, store.describe(key), CheckpointFormat.SAFETENSORS,
                List.of(readShard(store, file)), new Layout(List.of(file), List.of(), List.of()), Optional.empty());
    }

    private static Checkpoint openAdapter(BlobStore store, String location, Map<String, BlobInfo> children)
            throws IOException {
        BlobInfo configBlob = children.get(AdapterConfig.FILE_NAME);
        AdapterConfig config = AdapterConfig.parse(store.describe(configBlob.key()),
                store.readAllBytes(configBlob.key()));
        BlobInfo weights = children.get(ADAPTER_WEIGHTS);
        if (weights == null) {
            throw new InvalidCheckpointException(location + ": PEFT adapter has no adapter_model.safetensors"
                    + (children.containsKey("adapter_model.bin") ? " (adapter_model.bin is a pickle; convert it to safetensors)" : ""));
        }
        Checkpoint checkpoint = new Checkpoint(store, location, CheckpointFormat.PEFT_ADAPTER,
                List.of(readShard(store, weights)),
                Layout.of(children, List.of(AdapterConfig.FILE_NAME, ADAPTER_WEIGHTS)), Optional.of(config));
        checkpoint.loraModules();
        return checkpoint;
    }

    private static Checkpoint openDelta(BlobStore store, String location, Map<String, BlobInfo> children)
            throws IOException {
        BlobInfo weights = children.get(DELTA_WEIGHTS);
        if (weights == null) {
            throw new InvalidCheckpointException(location + ": a delta (" + DELTA_MANIFEST + ") without " + DELTA_WEIGHTS);
        }
        List<ShardFile> files = new ArrayList<>(List.of(readShard(store, weights)));
        List<String> own = new ArrayList<>(List.of(DELTA_MANIFEST, DELTA_WEIGHTS));
        if (children.containsKey(DELTA_EXACT)) {
            files.add(readShard(store, children.get(DELTA_EXACT)));
            own.add(DELTA_EXACT);
        }
        return new Checkpoint(store, location, CheckpointFormat.DELTA, files, Layout.of(children, own), Optional.empty());
    }

    private static Checkpoint openSharded(BlobStore store, String location, Map<String, BlobInfo> children,
                                          String indexName) throws IOException {
        BlobInfo indexBlob = children.get(indexName);
        String indexSource = store.describe(indexBlob.key());
        ShardIndex index = ShardIndex.parse(indexSource, store.readAllBytes(indexBlob.key()));
        List<String> shardNames = index.weightMap().values().stream().distinct().sorted().toList();
        List<ShardFile> shards = new ArrayList<>();
        for (String name : shardNames) {
            BlobInfo blob = children.get(name);
            if (blob == null) {
                throw new InvalidCheckpointException(indexSource + ": names shard " + name + ", which is missing");
            }
            shards.add(readShard(store, blob));
        }
        Set<String> held = new HashSet<>();
        for (ShardFile shard : shards) {
            for (TensorInfo t : shard.header().tensors()) {
                String mapped = index.weightMap().get(t.name());
                if (!shard.blob().fileName().equals(mapped)) {
                    throw new InvalidCheckpointException(indexSource + ": tensor '" + t.name() + "' is in "
                            + shard.blob().fileName() + " but the index maps it to " + mapped);
                }
                held.add(t.name());
            }
        }
        for (var entry : index.weightMap().entrySet()) {
            if (!held.contains(entry.getKey())) {
                throw new InvalidCheckpointException(indexSource + ": tensor '" + entry.getKey() + "' is mapped to "
                        + entry.getValue() + " but that shard does not hold it");
            }
        }
        List<String> own = new ArrayList<>(shardNames);
        own.add(indexName);
        return new Checkpoint(store, location, CheckpointFormat.SHARDED, shards, Layout.of(children, own),
                Optional.empty());
    }

    /** A directory's files sorted into those of the layout (its own files, then tag-alongs) and the rest. */
    private record Layout(List<BlobInfo> files, List<BlobInfo> tagAlong, List<String> ignored) {
        static Layout of(Map<String, BlobInfo> children, List<String> own) {
            List<BlobInfo> files = new ArrayList<>();
            List<BlobInfo> tagAlong = new ArrayList<>();
            List<String> ignored = new ArrayList<>();
            for (var child : children.entrySet()) {
                if (own.contains(child.getKey())) {
                    files.add(child.getValue());
                } else if (TAG_ALONG_NAMES.contains(child.getKey())) {
                    files.add(child.getValue());
                    tagAlong.add(child.getValue());
                } else {
                    ignored.add(child.getKey());
                }
            }
            return new Layout(files, tagAlong, ignored);
        }
    }

    private static ShardFile readShard(BlobStore store, BlobInfo blob) throws IOException {
        return new ShardFile(blob, HeaderReader.read(store, blob));
    }

    public BlobStore store() {
        return store;
    }

    /** Where the checkpoint is: a local path or an s3:// URI. */
    public String location() {
        return location;
    }

    public CheckpointFormat format() {
        return format;
    }

    public List<ShardFile> files() {
        return files;
    }

    /** The configs, tokenizer files and model card beside the weights (see {@link #TAG_ALONG_NAMES}). */
    public List<BlobInfo> tagAlongFiles() {
        return tagAlong;
    }

    /** Every file the checkpoint's layout defines (weights, index or adapter config, tag-alongs), by name. */
    public List<BlobInfo> layoutFiles() {
        return layoutFiles;
    }

    /** Names of the directory's other files, which nothing reads or copies. */
    public List<String> ignoredFiles() {
        return ignored;
    }

    public Optional<AdapterConfig> adapterConfig() {
        return adapter;
    }

    /** Every tensor, file by file, each file in data order. */
    public List<TensorInfo> tensors() {
        List<TensorInfo> all = new ArrayList<>();
        for (ShardFile file : files) {
            all.addAll(file.header().tensors());
        }
        return all;
    }

    public Optional<TensorInfo> tensor(String name) {
        ShardFile file = fileOfTensor.get(name);
        return file == null ? Optional.empty() : file.header().tensor(name);
    }

    /** The file holding tensor {@code name}. */
    public Optional<ShardFile> fileOf(String name) {
        return Optional.ofNullable(fileOfTensor.get(name));
    }

    /** The {@code __metadata__} of the files, merged in file order. */
    public Map<String, String> metadata() {
        Map<String, String> merged = new LinkedHashMap<>();
        files.forEach(f -> merged.putAll(f.header().metadata()));
        return merged;
    }

    public long parameterCount() {
        return tensors().stream().mapToLong(TensorInfo::elementCount).sum();
    }

    /** Bytes of tensor data (what a sharded index calls total_size). */
    public long tensorBytes() {
        return tensors().stream().mapToLong(TensorInfo::byteLength).sum();
    }

    /** Tensor count per dtype. */
    public Map<DType, Long> dtypeCounts() {
        Map<DType, Long> counts = new TreeMap<>();
        tensors().forEach(t -> counts.merge(t.dtype(), 1L, Long::sum));
        return counts;
    }

    /**
     * The adapted modules of a PEFT LoRA adapter, each with its factors and scaling.
     *
     * @throws InvalidCheckpointException if a lora_A has no lora_B (or the reverse) or their shapes disagree
     */
    public List<LoraModule> loraModules() throws InvalidCheckpointException {
        AdapterConfig config = adapter.orElseThrow(() ->
                new IllegalStateException(location + " is not a PEFT adapter"));
        Map<String, TensorInfo> as = new TreeMap<>();
        Map<String, TensorInfo> bs = new TreeMap<>();
        for (TensorInfo t : tensors()) {
            String name = t.name();
            String module;
            if ((module = loraModuleName(name, ".lora_A.weight")) != null) {
                as.put(module, t);
            } else if ((module = loraModuleName(name, ".lora_B.weight")) != null) {
                bs.put(module, t);
            }
        }
        List<LoraModule> modules = new ArrayList<>();
        for (var entry : as.entrySet()) {
            String module = entry.getKey();
            TensorInfo a = entry.getValue();
            TensorInfo b = bs.remove(module);
            if (b == null) {
                throw new InvalidCheckpointException(location + ": tensor '" + a.name() + "' has no matching lora_B");
            }
            if (a.rank() != 2 || b.rank() != 2 || a.dim(0) != b.dim(1)) {
                throw new InvalidCheckpointException(location + ": LoRA factors of '" + module + "' do not fit: A "
                        + java.util.Arrays.toString(a.shape()) + ", B " + java.util.Arrays.toString(b.shape()));
            }
            modules.add(new LoraModule(module, module + ".weight", a, b, config.scalingFor(module), config.fanInFanOut()));
        }
        if (!bs.isEmpty()) {
            TensorInfo orphan = bs.values().iterator().next();
            throw new InvalidCheckpointException(location + ": tensor '" + orphan.name() + "' has no matching lora_A");
        }
        return modules;
    }

    /** Tensors of an adapter that replace base tensors whole (modules_to_save, e.g. a classification head). */
    public List<TensorInfo> savedModuleTensors() {
        return tensors().stream().filter(t -> !t.name().contains(".lora_")).toList();
    }

    /**
     * The base-model name PEFT gives an adapter tensor: without the {@code base_model.model.} prefix PEFT adds
     * when saving.
     */
    public static String baseModelName(String adapterTensor) {
        return adapterTensor.startsWith(PEFT_PREFIX) ? adapterTensor.substring(PEFT_PREFIX.length()) : adapterTensor;
    }

    private static String loraModuleName(String tensor, String suffix) {
        if (!tensor.endsWith(suffix)) {
            return null;
        }
        return baseModelName(tensor.substring(0, tensor.length() - suffix.length()));
    }

    /** Maps every file of this checkpoint for reading, through {@code cache} when the store is remote. */
    public MappedCheckpoint map(BlobCache cache) throws IOException {
        return MappedCheckpoint.open(this, cache);
    }
}
