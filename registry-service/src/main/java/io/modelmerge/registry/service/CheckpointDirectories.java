package io.modelmerge.registry.service;

import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.checkpoint.AdapterConfig;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

/**
 * Where checkpoints may be under a prefix: every directory that directly holds weights (safetensors, a sharded
 * index, an adapter config, or pickled weights, which the registration then refuses with a reason), and the
 * model name each would get.
 */
final class CheckpointDirectories {
    private static final List<String> WEIGHT_SUFFIXES = List.of(".safetensors", ".safetensors.index.json",
            AdapterConfig.FILE_NAME, ".bin", ".pt", ".pth", ".ckpt", ".gguf");

    private CheckpointDirectories() {
    }

    /** The directories (keys ending in {@code /}, or {@code ""} for the root) directly holding weights. */
    static Set<String> find(List<BlobInfo> listed) {
        Set<String> dirs = new TreeSet<>();
        for (BlobInfo blob : listed) {
            String key = blob.key();
            int slash = key.lastIndexOf('/');
            String name = key.substring(slash + 1);
            if (WEIGHT_SUFFIXES.stream().anyMatch(name::endsWith)) {
                dirs.add(key.substring(0, slash + 1));
            }
        }
        return dirs;
    }

    /**
     * The model name for {@code dir} found under {@code prefix}: its path below the prefix with {@code /} as
     * {@code -}, lower-cased, other characters outside a-z 0-9 . _ - as {@code -}; the prefix's own last part
     * (or {@code fallback}, e.g. the bucket) when the checkpoint sits at the prefix itself.
     */
    static String modelName(String prefix, String dir, String fallback) {
        String relative = strip(dir.substring(prefix.length()));
        if (relative.isEmpty()) {
            String own = strip(prefix);
            relative = own.isEmpty() ? fallback : own.substring(own.lastIndexOf('/') + 1);
        }
        String name = relative.toLowerCase(Locale.ROOT).replace('/', '-').replaceAll("[^a-z0-9._-]", "-")
                .replaceAll("\\.\\.+", ".").replaceAll("^[^a-z0-9]+", "");
        return name.length() > 96 ? name.substring(0, 96) : name;
    }

    private static String strip(String path) {
        return path.endsWith("/") ? path.substring(0, path.length() - 1) : path;
    }
}
