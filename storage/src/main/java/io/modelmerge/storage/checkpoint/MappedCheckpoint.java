package io.modelmerge.storage.checkpoint;

import io.modelmerge.storage.blob.BlobCache;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.safetensors.SafetensorsFormatException;
import io.modelmerge.storage.safetensors.Tensor;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;

/** A checkpoint's safetensors files mapped into memory, serving any tensor as a zero-copy view. */
public final class MappedCheckpoint implements AutoCloseable {
    private final Checkpoint checkpoint;
    private final Map<String, SafetensorsFile> byKey;

    private MappedCheckpoint(Checkpoint checkpoint, Map<String, SafetensorsFile> byKey) {
        this.checkpoint = checkpoint;
        this.byKey = byKey;
    }

    static MappedCheckpoint open(Checkpoint checkpoint, BlobCache cache) throws IOException {
        Map<String, SafetensorsFile> byKey = new HashMap<>();
        List<SafetensorsFile> opened = new ArrayList<>();
        try {
            for (Checkpoint.ShardFile shard : checkpoint.files()) {
                SafetensorsFile file = cache.open(checkpoint.store(), shard.blob().key(), SafetensorsFile::open);
                opened.add(file);
                if (file.header().tensors().size() != shard.header().tensors().size()
                        || file.header().dataStart() != shard.header().dataStart()) {
                    throw new SafetensorsFormatException(shard.blob().key(), "changed since its header was read");
                }
                byKey.put(shard.blob().key(), file);
            }
        } catch (IOException | RuntimeException e) {
            opened.forEach(SafetensorsFile::close);
            throw e;
        }
        return new MappedCheckpoint(checkpoint, byKey);
    }

    public Checkpoint checkpoint() {
        return checkpoint;
    }

    /** The open file holding tensor {@code name}, for positional reads of its data. */
    public SafetensorsFile fileOf(String name) {
        Checkpoint.ShardFile shard = checkpoint.fileOf(name).orElseThrow(() ->
                new NoSuchElementException(checkpoint.location() + ": no tensor named '" + name + "'"));
        return byKey.get(shard.blob().key());
    }

    public Tensor tensor(String name) {
        Checkpoint.ShardFile shard = checkpoint.fileOf(name).orElseThrow(() ->
                new NoSuchElementException(checkpoint.location() + ": no tensor named '" + name + "'"));
        return byKey.get(shard.blob().key()).tensor(name);
    }

    @Override
    public void close() {
        byKey.values().forEach(SafetensorsFile::close);
    }
}
