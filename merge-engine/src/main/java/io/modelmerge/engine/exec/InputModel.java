package io.modelmerge.engine.exec;

import io.modelmerge.engine.compute.ComputeBackend;
import io.modelmerge.engine.delta.DeltaManifest;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.storage.blob.BlobCache;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.LocalBlobStore;
import io.modelmerge.storage.blob.Located;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.checkpoint.CheckpointFormat;
import io.modelmerge.storage.checkpoint.ContentDigest;
import io.modelmerge.storage.checkpoint.InvalidCheckpointException;
import io.modelmerge.storage.checkpoint.LoraModule;
import io.modelmerge.storage.checkpoint.MappedCheckpoint;
import io.modelmerge.storage.safetensors.Tensor;
import io.modelmerge.storage.safetensors.TensorInfo;
import io.modelmerge.storage.torch.TorchCheckpoints;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * One model a recipe names, opened: a checkpoint (local or {@code s3://}) or, for {@code path+adapter_path},
 * a base checkpoint with a PEFT LoRA adapter applied on the fly (W + scale·B·A, transposed when
 * {@code fan_in_fan_out}). Headers are read on open; tensor data is mapped (downloaded, for S3) on first use.
 */
final class InputModel implements AutoCloseable {
    private final String ref;
    private final ComputeBackend backend;
    private final Checkpoint checkpoint;
    private final Optional<Checkpoint> adapterCheckpoint;
    private final BlobCache cache;
    private final List<BlobStore> stores;
    private final Map<String, LoraModule> loraByWeight;
    private final Map<String, String> savedModules;
    private final List<String> notes;
    /** When the model is a stored delta: the delta, and its base, which it is applied to tensor by tensor. */
    private final Optional<DeltaInput> delta;

    private record DeltaInput(StoredDelta stored, InputModel base) {
    }
    // Mapped on first data access, so that planning (headers only) downloads nothing from S3.
    private MappedCheckpoint mapped;
    private MappedCheckpoint adapter;

    private InputModel(String ref, Checkpoint checkpoint, Optional<Checkpoint> adapterCheckpoint, BlobCache cache,
                       List<BlobStore> stores, Map<String, LoraModule> loraByWeight,
                       Map<String, String> savedModules, List<String> notes, ComputeBackend backend,
                       Optional<DeltaInput> delta) {
        this.ref = ref;
        this.delta = delta;
        this.backend = backend;
        this.checkpoint = checkpoint;
        this.adapterCheckpoint = adapterCheckpoint;
        this.cache = cache;
        this.stores = stores;
        this.loraByWeight = loraByWeight;
        this.savedModules = savedModules;
        this.notes = notes;
    }

    static InputModel open(String ref, MergeOptions options, BlobCache cache) throws IOException, RecipeException {
        int plus = ref.indexOf('+');
        String baseRef = plus < 0 ? ref : ref.substring(0, plus);
        List<BlobStore> stores = new ArrayList<>();
        try {
            Checkpoint base = openCheckpoint(baseRef, options, stores);
            if (base.format() == CheckpointFormat.DELTA && plus < 0) {
                return openDelta(ref, base, stores, options,
                        cache == null ? new BlobCache(options.cacheDir(), options.cacheBytes()) : cache);
            }
            if (base.format() == CheckpointFormat.DELTA) {
                throw new RecipeException("model '" + ref + "' applies an adapter to a stored delta; apply the delta first");
            }
            if (base.format() == CheckpointFormat.PEFT_ADAPTER) {
                throw new RecipeException("model '" + ref + "' is a PEFT adapter; name it as base_path+adapter_path");
            }
            if (plus < 0) {
                return new InputModel(ref, base, Optional.empty(), cache, stores, Map.of(), Map.of(), List.of(),
                        options.backend(), Optional.empty());
            }
            Checkpoint adapter = openCheckpoint(ref.substring(plus + 1), options, stores);
            if (adapter.format() != CheckpointFormat.PEFT_ADAPTER) {
                throw new RecipeException("'" + ref.substring(plus + 1) + "' in '" + ref + "' is not a PEFT adapter"
                        + " (no adapter_config.json)");
            }
            Map<String, LoraModule> byWeight = new LinkedHashMap<>();
            for (LoraModule module : adapter.loraModules()) {
                String weight = baseName(base, module.baseWeight()).orElseThrow(() -> new RecipeException(
                        "adapter of '" + ref + "' changes '" + module.baseWeight() + "', which the base does not have"));
                TensorInfo target = base.tensor(weight).orElseThrow();
                if (!java.util.Arrays.equals(target.shape(), module.baseShape())) {
                    throw new RecipeException("adapter of '" + ref + "': LoRA delta of '" + module.module() + "' has shape "
                            + java.util.Arrays.toString(module.baseShape()) + " but base tensor '" + weight + "' is "
                            + java.util.Arrays.toString(target.shape())
                            + (module.fanInFanOut() ? "" : " (is fan_in_fan_out set right?)"));
                }
                byWeight.put(weight, module);
            }
            Map<String, String> saved = new LinkedHashMap<>();
            List<String> notes = new ArrayList<>();
            for (TensorInfo t : adapter.savedModuleTensors()) {
                String name = Checkpoint.baseModelName(t.name()).replace(".modules_to_save.default.", ".");
                Optional<String> target = baseName(base, name);
                if (target.isPresent()) {
                    saved.put(target.get(), t.name());
                } else {
                    notes.add("adapter tensor '" + t.name() + "' has no counterpart in the base and is left out");
                }
            }
            return new InputModel(ref, base, Optional.of(adapter), cache, stores, byWeight, saved, notes,
                    options.backend(), Optional.empty());
        } catch (IOException | RecipeException | RuntimeException e) {
            for (BlobStore store : stores) {
                store.close();
            }
            throw e;
        }
    }

    /**
     * A stored delta read as the model it was taken from: its recorded base, checked against the digest the delta
     * records, with the delta applied tensor by tensor as the merge reads it (rounded to each tensor's dtype, and
     * for a dense delta with its exact values, so it reads as the fine-tune itself).
     */
    private static InputModel openDelta(String ref, Checkpoint files, List<BlobStore> stores, MergeOptions options,
                                        BlobCache cache) throws IOException, RecipeException {
        StoredDelta stored = StoredDelta.open(files, cache);
        InputModel base = null;
        try {
            base = open(stored.manifest().base().ref(), options, cache);
            String digest = base.contentDigest();
            if (!digest.equals(stored.manifest().base().digest())) {
                throw new RecipeException("delta " + ref + " was taken from base " + stored.manifest().base().ref()
                        + " (" + stored.manifest().base().digest() + "), but that location now holds " + digest);
            }
            return new InputModel(ref, files, Optional.empty(), cache, stores, Map.of(), Map.of(),
                    List.of("model " + ref + " is a delta (" + stored.manifest().operation() + ") of "
                            + stored.manifest().base().ref() + ", applied as it is read"),
                    options.backend(), Optional.of(new DeltaInput(stored, base)));
        } catch (IOException | RecipeException | RuntimeException e) {
            stored.close();
            if (base != null) {
                base.close();
            }
            throw e;
        }
    }

    /**
     * The checkpoint at {@code location}, its store added to {@code stores} (the caller closes them). A PyTorch
     * {@code .bin} checkpoint is opened from its safetensors conversion; it is looked for only when the location
     * holds no checkpoint of ours, so other inputs pay no second listing.
     */
    static Checkpoint openCheckpoint(String location, MergeOptions options, List<BlobStore> stores) throws IOException {
        Located located = options.storage().locate(location);
        stores.add(located.store());
        if (located.key().endsWith(".bin")) {
            return converted(located, options, stores);
        }
        try {
            return located.file() ? Checkpoint.openFile(located.store(), located.key())
                    : Checkpoint.open(located.store(), located.key());
        } catch (InvalidCheckpointException e) {
            if (!located.file() && TorchCheckpoints.isTorch(located.store(), located.key())) {
                return converted(located, options, stores);
            }
            throw e;
        }
    }

    private static Checkpoint converted(Located located, MergeOptions options, List<BlobStore> stores)
            throws IOException {
        LocalBlobStore converted = new LocalBlobStore(TorchCheckpoints.converted(located.store(), located.key(),
                options.cacheDir().resolve("converted")));
        stores.add(converted);
        return Checkpoint.open(converted, "");
    }

    /** The base's name for a tensor PEFT names {@code name}: as is, or without a leading {@code transformer.}/{@code model.}. */
    private static Optional<String> baseName(Checkpoint base, String name) {
        if (base.tensor(name).isPresent()) {
            return Optional.of(name);
        }
        int dot = name.indexOf('.');
        if (dot > 0 && base.tensor(name.substring(dot + 1)).isPresent()) {
            return Optional.of(name.substring(dot + 1));
        }
        return Optional.empty();
    }

    String ref() {
        return ref;
    }

    Checkpoint checkpoint() {
        return checkpoint;
    }

    /** What opening the model left out or changed, worth telling the user. */
    List<String> notes() {
        return notes;
    }

    List<TensorInfo> tensors() {
        if (delta.isPresent()) {
            List<TensorInfo> out = new ArrayList<>();
            DeltaManifest manifest = delta.get().stored().manifest();
            manifest.tensors().forEach(t -> out.add(info(t.name())));
            manifest.tied().keySet().forEach(name -> out.add(info(name)));
            return out;
        }
        return checkpoint.tensors();
    }

    Optional<TensorInfo> tensor(String name) {
        if (delta.isPresent()) {
            DeltaManifest manifest = delta.get().stored().manifest();
            return manifest.tensor(name).isPresent() || manifest.tied().containsKey(name) ? Optional.of(info(name))
                    : Optional.empty();
        }
        return checkpoint.tensor(name);
    }

    /** A delta's tensor as the fine-tune holds it (its data range is nominal: it is read through the delta). */
    private TensorInfo info(String name) {
        DeltaManifest.TensorEntry entry = delta.orElseThrow().stored().entry(name);
        long bytes = entry.elements() * entry.dtype().bits() / 8;
        return new TensorInfo(name, entry.dtype(), entry.shape(), 0, bytes);
    }

    /** Bytes a source for {@code name} holds in memory (LoRA-applied tensors are materialised as F32). */
    long materializedBytes(String name) {
        return loraByWeight.containsKey(name) || savedModules.containsKey(name)
                ? checkpoint.tensor(name).orElseThrow().elementCount() * 4 : 0;
    }

    /** The content digest of the files this model is read from (its adapter's too), as the registry records it. */
    String contentDigest() throws IOException {
        if (adapterCheckpoint.isEmpty() || delta.isPresent()) {
            return ContentDigest.of(checkpoint);
        }
        return ContentDigest.of(List.of(ContentDigest.of(checkpoint), ContentDigest.of(adapterCheckpoint.get())));
    }

    /** The stored tensor {@code name} of the base checkpoint, as its raw bytes. */
    Tensor rawTensor(String name) {
        if (delta.isPresent()) {
            return new Tensor(info(name), delta.get().stored().raw(name));
        }
        return mapped().tensor(name);
    }

    TensorSource source(String name) {
        if (delta.isPresent()) {
            StoredDelta.Reader reader = delta.get().stored().reader(name);
            boolean whole = reader.entry().encoding() == DeltaManifest.Encoding.WHOLE;
            return new DeltaSource(info(name), whole ? null : delta.get().base().source(reader.entry().name()), reader);
        }
        LoraModule module = loraByWeight.get(name);
        if (module != null) {
            return LoraApplication.apply(mapped().tensor(name), adapter(), module, backend);
        }
        String saved = savedModules.get(name);
        if (saved != null) {
            MappedCheckpoint adapterFiles = adapter();
            return new StoredSource(adapterFiles.fileOf(saved), adapterFiles.tensor(saved).info());
        }
        return new StoredSource(mapped().fileOf(name), mapped().tensor(name).info());
    }

    private synchronized MappedCheckpoint mapped() {
        if (mapped == null) {
            mapped = map(checkpoint);
        }
        return mapped;
    }

    private synchronized MappedCheckpoint adapter() {
        if (adapter == null) {
            adapter = map(adapterCheckpoint.orElseThrow());
        }
        return adapter;
    }

    private MappedCheckpoint map(Checkpoint files) {
        try {
            return files.map(cache);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public synchronized void close() throws IOException {
        if (delta.isPresent()) {
            delta.get().stored().close();
            delta.get().base().close();
        }
        if (mapped != null) {
            mapped.close();
        }
        if (adapter != null) {
            adapter.close();
        }
        for (BlobStore store : stores) {
            store.close();
        }
    }
}
