package io.modelmerge.storage.safetensors;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Where every tensor of a file to be written goes, decided before any data is written, so the header can be
 * written first and the data streamed after it. Tensors are ordered as the reference implementation orders
 * them (descending dtype, then name), which makes our files byte-identical to its files.
 */
public final class SafetensorsLayout {
    private final List<TensorInfo> tensors;
    private final Map<String, Integer> indexByName;
    private final Map<String, String> metadata;
    private final byte[] headerJson;

    private SafetensorsLayout(List<TensorInfo> tensors, Map<String, String> metadata) {
        this.tensors = List.copyOf(tensors);
        Map<String, Integer> index = new LinkedHashMap<>();
        for (int i = 0; i < this.tensors.size(); i++) {
            index.put(this.tensors.get(i).name(), i);
        }
        this.indexByName = Collections.unmodifiableMap(index);
        this.metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
        this.headerJson = HeaderJson.write(this.tensors, this.metadata);
    }

    /**
     * Plans a file holding {@code specs} and {@code metadata} (kept in the given order).
     *
     * @throws IllegalArgumentException if two tensors share a name
     */
    public static SafetensorsLayout of(List<TensorSpec> specs, Map<String, String> metadata) {
        Set<String> names = new HashSet<>();
        for (TensorSpec spec : specs) {
            if (!names.add(spec.name())) {
                throw new IllegalArgumentException("Duplicate tensor name: " + spec.name());
            }
            if (spec.name().equals("__metadata__")) {
                throw new IllegalArgumentException("A tensor cannot be named __metadata__");
            }
        }
        List<TensorSpec> ordered = new ArrayList<>(specs);
        ordered.sort(Comparator.comparing(TensorSpec::dtype).reversed().thenComparing(TensorSpec::name, SafetensorsLayout::byCodePoint));
        List<TensorInfo> placed = new ArrayList<>(ordered.size());
        long offset = 0;
        for (TensorSpec spec : ordered) {
            long end = Math.addExact(offset, spec.byteLength());
            placed.add(new TensorInfo(spec.name(), spec.dtype(), spec.shape(), offset, end));
            offset = end;
        }
        return new SafetensorsLayout(placed, metadata);
    }

    /** Rust orders strings by UTF-8 bytes, which is code point order (String.compareTo differs above U+E000). */
    private static int byCodePoint(String a, String b) {
        return java.util.Arrays.compare(a.codePoints().toArray(), b.codePoints().toArray());
    }

    /** Tensors in data order, with their offsets. */
    public List<TensorInfo> tensors() {
        return tensors;
    }

    public Optional<TensorInfo> tensor(String name) {
        Integer index = indexByName.get(name);
        return index == null ? Optional.empty() : Optional.of(tensors.get(index));
    }

    int indexOf(String name) {
        Integer index = indexByName.get(name);
        if (index == null) {
            throw new IllegalArgumentException("Tensor '" + name + "' is not in this file's layout");
        }
        return index;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    /** The padded JSON header, without the 8-byte length prefix. */
    byte[] headerJson() {
        return headerJson.clone();
    }

    public long dataStart() {
        return SafetensorsHeader.LENGTH_PREFIX + headerJson.length;
    }

    public long dataSize() {
        return tensors.isEmpty() ? 0 : tensors.getLast().end();
    }

    public long fileSize() {
        return dataStart() + dataSize();
    }
}
