package io.modelmerge.storage.safetensors;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The parsed and validated header of a safetensors file: tensors in data order (by offset), the
 * {@code __metadata__} map in file order (empty when absent), and the JSON header's length in bytes.
 */
public final class SafetensorsHeader {

    /** Bytes before the JSON header: its length as a little-endian u64. */
    public static final int LENGTH_PREFIX = 8;

    private final List<TensorInfo> tensors;
    private final Map<String, TensorInfo> byName;
    private final Map<String, String> metadata;
    private final long headerSize;

    public SafetensorsHeader(List<TensorInfo> tensors, Map<String, String> metadata, long headerSize) {
        this.tensors = List.copyOf(tensors);
        Map<String, TensorInfo> index = new LinkedHashMap<>();
        for (TensorInfo info : this.tensors) {
            if (index.put(info.name(), info) != null) {
                throw new IllegalArgumentException("Duplicate tensor name: " + info.name());
            }
        }
        this.byName = Collections.unmodifiableMap(index);
        this.metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
        this.headerSize = headerSize;
    }

    /** Tensors in data order. */
    public List<TensorInfo> tensors() {
        return tensors;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    /** The JSON header's length in bytes, padding included. */
    public long headerSize() {
        return headerSize;
    }

    public long dataStart() {
        return LENGTH_PREFIX + headerSize;
    }

    /** Bytes of tensor data: the end of the last tensor. */
    public long dataSize() {
        return tensors.isEmpty() ? 0 : tensors.getLast().end();
    }

    public long fileSize() {
        return dataStart() + dataSize();
    }

    public Optional<TensorInfo> tensor(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    public boolean contains(String name) {
        return byName.containsKey(name);
    }
}
