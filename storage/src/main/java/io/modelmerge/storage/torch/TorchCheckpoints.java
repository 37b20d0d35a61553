package io.modelmerge.storage.torch;

import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.LocalDirectories;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.checkpoint.InvalidCheckpointException;
import io.modelmerge.storage.checkpoint.ShardIndex;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;

/**
 * Hugging Face checkpoints saved as PyTorch pickles: {@code pytorch_model.bin}, or shards with
 * {@code pytorch_model.bin.index.json}. They are converted once into a safetensors checkpoint under a work
 * directory (keyed by the files' location, size and checksum or modification time, so an unchanged checkpoint is
 * converted once and reused), with its tag-along files copied beside; everything downstream then reads
 * safetensors. Nothing in the pickles is run ({@link TorchPickle}).
 */
public final class TorchCheckpoints {
    public static final String SINGLE_FILE = "pytorch_model.bin";
    public static final String INDEX_SUFFIX = ".bin.index.json";
    private static final String COMPLETE = ".converted";

    private TorchCheckpoints() {
    }

    /** Whether {@code path} in {@code store} is a PyTorch pickle checkpoint: a {@code .bin} file or a directory of them. */
    public static boolean isTorch(BlobStore store, String path) throws IOException {
        if (path.endsWith(".bin")) {
            return true;
        }
        Map<String, BlobInfo> children = children(store, path);
        boolean safetensors = children.keySet().stream().anyMatch(n -> n.endsWith(".safetensors"));
        return !safetensors && (children.containsKey(SINGLE_FILE)
                || children.keySet().stream().anyMatch(n -> n.endsWith(INDEX_SUFFIX)));
    }

    /**
     * The directory under {@code workDir} holding {@code path} converted to safetensors (converting it now unless
     * an earlier conversion of the same files is there).
     */
    public static Path converted(BlobStore store, String path, Path workDir) throws IOException {
        Map<String, BlobInfo> weights = new TreeMap<>();
        Map<String, BlobInfo> tagAlong = new TreeMap<>();
        Optional<BlobInfo> index = Optional.empty();
        Optional<ShardIndex> shards = Optional.empty();
        if (path.endsWith(".bin")) {
            BlobInfo file = store.head(path).orElseThrow(() ->
                    new InvalidCheckpointException(store.describe(path) + ": no such file"));
            weights.put(file.fileName(), file);
        } else {
            Map<String, BlobInfo> children = children(store, path);
            index = children.entrySet().stream().filter(e -> e.getKey().endsWith(INDEX_SUFFIX)).map(Map.Entry::getValue)
                    .findFirst();
            if (index.isPresent()) {
                shards = Optional.of(ShardIndex.parse(store.describe(index.get().key()),
                        store.readAllBytes(index.get().key())));
                for (String shard : shards.get().weightMap().values()) {
                    BlobInfo blob = children.get(shard);
                    if (blob == null) {
                        throw new InvalidCheckpointException(store.describe(index.get().key()) + ": names shard "
                                + shard + ", which is missing");
                    }
                    weights.put(shard, blob);
                }
            } else {
                weights.put(SINGLE_FILE, children.get(SINGLE_FILE));
            }
            children.forEach((name, blob) -> {
                if (Checkpoint.TAG_ALONG_NAMES.contains(name)) {
                    tagAlong.put(name, blob);
                }
            });
        }
        List<BlobInfo> all = new java.util.ArrayList<>(weights.values());
        index.ifPresent(all::add);
        all.addAll(tagAlong.values());
        Path dir = workDir.resolve("torch-" + key(store, all));
        if (Files.exists(dir.resolve(COMPLETE))) {
            return dir;
        }
        Files.createDirectories(workDir);
        Path partial = workDir.resolve(dir.getFileName() + ".partial-" + UUID.randomUUID());
        try {
            Files.createDirectories(partial);
            Map<String, String> renamed = new LinkedHashMap<>();
            for (BlobInfo bin : weights.values()) {
                String target = weights.size() == 1 && index.isEmpty() ? Checkpoint.SINGLE_FILE
                        : bin.fileName().substring(0, bin.fileName().length() - ".bin".length()) + ".safetensors";
                renamed.put(bin.fileName(), target);
                convert(store, bin, partial.resolve(target), workDir);
            }
            if (shards.isPresent()) {
                Map<String, String> map = new LinkedHashMap<>();
                shards.get().weightMap().forEach((tensor, shard) -> map.put(tensor, renamed.get(shard)));
                Files.write(partial.resolve(ShardIndex.FILE_NAME), new ShardIndex(shards.get().totalSize(), map).toJson());
            }
            for (BlobInfo file : tagAlong.values()) {
                try (InputStream in = store.read(file.key())) {
                    Files.copy(in, partial.resolve(file.fileName()));
                }
            }
            Files.writeString(partial.resolve(COMPLETE), store.describe(path) + "\n");
            try {
                Files.move(partial, dir, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException | java.nio.file.DirectoryNotEmptyException raced) {
                // another merge converted the same files meanwhile; its copy is as good
            }
            return dir;
        } finally {
            LocalDirectories.delete(partial);
        }
    }

    private static void convert(BlobStore store, BlobInfo bin, Path target, Path workDir) throws IOException {
        String source = store.describe(bin.key());
        Optional<Path> local = store.localFile(bin.key());
        Path file = local.orElse(workDir.resolve(bin.fileName() + ".download-" + UUID.randomUUID()));
        try {
            if (local.isEmpty()) {
                try (InputStream in = store.read(bin.key())) {
                    Files.copy(in, file);
                }
            }
            try (TorchArchive archive = TorchArchive.open(file, source)) {
                archive.writeSafetensors(target);
            }
        } finally {
            if (local.isEmpty()) {
                Files.deleteIfExists(file);
            }
        }
    }

    /** What identifies the files' content: their locations, sizes and checksums (else modification times). */
    private static String key(BlobStore store, Iterable<BlobInfo> files) throws IOException {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            for (BlobInfo file : files) {
                Optional<Path> local = store.localFile(file.key());
                String stamp = file.crc32c().orElse(local.isPresent()
                        ? Files.getLastModifiedTime(local.get()).toString() : "");
                digest.update((store.describe(file.key()) + "\n" + file.size() + "\n" + stamp + "\n")
                        .getBytes(StandardCharsets.UTF_8));
            }
            return HexFormat.of().formatHex(digest.digest(), 0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Map<String, BlobInfo> children(BlobStore store, String path) throws IOException {
        String dir = path.isEmpty() || path.endsWith("/") ? path : path + "/";
        Map<String, BlobInfo> children = new TreeMap<>();
        for (BlobInfo blob : store.listDirectory(dir)) {
            children.put(blob.key().substring(dir.length()), blob);
        }
        return children;
    }

}
