package io.modelmerge.storage.checkpoint;

import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.safetensors.SafetensorsLayout;
import io.modelmerge.storage.safetensors.SafetensorsWriter;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a checkpoint into a local directory in the Hugging Face layout: {@code model.safetensors} when it
 * fits one shard, else {@code model-0000i-of-0000N.safetensors} plus {@code model.safetensors.index.json}.
 * Tensors are assigned to shards as huggingface_hub does (in the given order; a new shard when the next tensor
 * would pass the limit; a tensor larger than the limit gets a shard of its own). Data streams in chunks into
 * every shard at once; nothing is visible under its final name before {@link #commit()}.
 */
public final class CheckpointWriter implements AutoCloseable {
    private final Path directory;
    private final List<String> fileNames;
    private final List<SafetensorsWriter> writers;
    private final Map<String, SafetensorsWriter> writerOfTensor;
    /** The index to write on commit; null when this writer writes one unsharded file or only some shards. */
    private final ShardIndex index;
    private boolean committed;

    private CheckpointWriter(Path directory, List<String> fileNames, List<SafetensorsWriter> writers,
                             Map<String, SafetensorsWriter> writerOfTensor, ShardIndex index) {
        this.directory = directory;
        this.fileNames = List.copyOf(fileNames);
        this.writers = List.copyOf(writers);
        this.writerOfTensor = writerOfTensor;
        this.index = index;
    }

    /**
     * Plans the shards of {@code tensors} (in model order) and writes their headers.
     *
     * @param maxShardSize the largest amount of tensor data per shard, in bytes
     */
    public static CheckpointWriter create(Path directory, List<TensorSpec> tensors, Map<String, String> metadata,
                                          long maxShardSize) throws IOException {
        return create(directory, tensors, metadata, maxShardSize, shard -> true);
    }

    /**
     * Plans the shards of {@code tensors} as {@link #create(Path, List, Map, long)} does, but writes only shard
     * {@code shard} (0-based): the same file, byte for byte, as the whole checkpoint's writer gives it, and no
     * index. Several workers each writing shards this way, and {@link #writeIndex} once, give the checkpoint.
     */
    public static CheckpointWriter createShard(Path directory, List<TensorSpec> tensors, Map<String, String> metadata,
                                               long maxShardSize, int shard) throws IOException {
        int count = shards(tensors, maxShardSize).size();
        if (shard < 0 || shard >= count) {
            throw new IllegalArgumentException("shard " + shard + " of a checkpoint of " + count + " shards");
        }
        return create(directory, tensors, metadata, maxShardSize, i -> i == shard);
    }

    private static CheckpointWriter create(Path directory, List<TensorSpec> tensors, Map<String, String> metadata,
                                           long maxShardSize, java.util.function.IntPredicate written)
            throws IOException {
        if (maxShardSize <= 0) {
            throw new IllegalArgumentException("Max shard size must be positive, got " + maxShardSize);
        }
        List<List<TensorSpec>> shards = shards(tensors, maxShardSize);
        Files.createDirectories(directory);
        List<String> names = shardNames(shards.size());
        List<String> writtenNames = new ArrayList<>();
        List<SafetensorsWriter> writers = new ArrayList<>();
        Map<String, SafetensorsWriter> writerOfTensor = new HashMap<>();
        try {
            for (int i = 0; i < shards.size(); i++) {
                if (!written.test(i)) {
                    continue;
                }
                SafetensorsWriter writer = SafetensorsWriter.create(directory.resolve(names.get(i)),
                        SafetensorsLayout.of(shards.get(i), metadata));
                writers.add(writer);
                writtenNames.add(names.get(i));
                for (TensorSpec spec : shards.get(i)) {
                    writerOfTensor.put(spec.name(), writer);
                }
            }
        } catch (IOException | RuntimeException e) {
            for (SafetensorsWriter writer : writers) {
                writer.close();
            }
            throw e;
        }
        boolean whole = writtenNames.size() == shards.size();
        return new CheckpointWriter(directory, writtenNames, writers, writerOfTensor,
                whole && shards.size() > 1 ? index(tensors, maxShardSize) : null);
    }

    /** The shards' file names: {@code model.safetensors} alone, else {@code model-0000i-of-0000N.safetensors}. */
    public static List<String> shardNames(int count) {
        List<String> names = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            names.add(count == 1 ? Checkpoint.SINGLE_FILE : String.format("model-%05d-of-%05d.safetensors", i + 1, count));
        }
        return names;
    }

    /** The index of a checkpoint of {@code tensors} sharded at {@code maxShardSize}. */
    public static ShardIndex index(List<TensorSpec> tensors, long maxShardSize) {
        List<List<TensorSpec>> shards = shards(tensors, maxShardSize);
        List<String> names = shardNames(shards.size());
        Map<String, String> weightMap = new LinkedHashMap<>();
        long totalSize = 0;
        for (int i = 0; i < shards.size(); i++) {
            for (TensorSpec spec : shards.get(i)) {
                weightMap.put(spec.name(), names.get(i));
                totalSize += spec.byteLength();
            }
        }
        return new ShardIndex(totalSize, weightMap);
    }

    /** Writes {@code index} into {@code directory} under its name, atomically. */
    public static void writeIndex(Path directory, ShardIndex index) throws IOException {
        Path temp = directory.resolve(ShardIndex.FILE_NAME + ".partial");
        Files.write(temp, index.toJson());
        Files.move(temp, directory.resolve(ShardIndex.FILE_NAME), StandardCopyOption.ATOMIC_MOVE,
                StandardCopyOption.REPLACE_EXISTING);
    }

    /**
     * The tensors of each shard, in shard order, as the writers assign them (huggingface_hub's rule, in the
     * class comment).
     */
    public static List<List<TensorSpec>> shards(List<TensorSpec> tensors, long maxShardSize) {
        List<List<TensorSpec>> shards = new ArrayList<>();
        List<TensorSpec> current = new ArrayList<>();
        long currentSize = 0;
        for (TensorSpec spec : tensors) {
            long size = spec.byteLength();
            if (size > maxShardSize) {
                shards.add(List.of(spec));
                continue;
            }
            if (currentSize + size > maxShardSize) {
                shards.add(current);
                current = new ArrayList<>();
                currentSize = 0;
            }
            current.add(spec);
            currentSize += size;
        }
        if (!current.isEmpty() || shards.isEmpty()) {
            shards.add(current);
        }
        return shards;
    }

    /** The safetensors files this writer produces, in shard order. */
    public List<String> fileNames() {
        return fileNames;
    }

    /** Whether this writer writes a whole sharded checkpoint, index included. */
    public boolean sharded() {
        return index != null;
    }

    /** Writes {@code chunk} at byte {@code offset} of tensor {@code name}. Thread-safe. */
    public void write(String name, long offset, MemorySegment chunk) throws IOException {
        SafetensorsWriter writer = writerOfTensor.get(name);
        if (writer == null) {
            throw new IllegalArgumentException("Tensor '" + name + "' is not part of this checkpoint");
        }
        writer.write(name, offset, chunk);
    }

    /** Pushes every shard's written data to disk ahead of {@link #commit()}; callable from another thread. */
    public void flush() throws IOException {
        for (SafetensorsWriter writer : writers) {
            writer.flush();
        }
    }

    /** Copies tag-along files (config.json, tokenizer files, ...) from {@code store} into the directory. */
    public void copyTagAlong(BlobStore store, List<BlobInfo> files) throws IOException {
        for (BlobInfo file : files) {
            Path target = directory.resolve(file.fileName());
            try (InputStream in = store.read(file.key())) {
                Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }

    /** Commits every shard, then writes the index (when sharded): the checkpoint is complete on return. */
    public void commit() throws IOException {
        for (SafetensorsWriter writer : writers) {
            writer.commit();
        }
        if (sharded()) {
            writeIndex(directory, index);
        }
        committed = true;
    }

    @Override
    public void close() throws IOException {
        IOException failure = null;
        for (SafetensorsWriter writer : writers) {
            try {
                writer.close();
            } catch (IOException e) {
                failure = failure == null ? e : failure;
            }
        }
        if (!committed) {
            for (String name : fileNames) {
                Files.deleteIfExists(directory.resolve(name));
            }
        }
        if (failure != null) {
            throw failure;
        }
    }
}
