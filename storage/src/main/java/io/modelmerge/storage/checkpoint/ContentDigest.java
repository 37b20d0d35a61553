package io.modelmerge.storage.checkpoint;

import io.modelmerge.storage.blob.BlobInfo;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The identity of a checkpoint's content, as the registry records it for a version: SHA-256 over the sorted
 * SHA-256s of the files its layout defines (weights, index or adapter config, tag-alongs), one per line,
 * written {@code sha256:<hex>}.
 */
public final class ContentDigest {
    private ContentDigest() {
    }

    /** The digest of files whose SHA-256s (hex) are {@code sha256s}. */
    public static String of(Collection<String> sha256s) {
        List<String> sorted = new ArrayList<>(sha256s);
        sorted.sort(null);
        MessageDigest digest = sha256();
        for (String sum : sorted) {
            digest.update((sum + "\n").getBytes(StandardCharsets.US_ASCII));
        }
        return "sha256:" + HexFormat.of().formatHex(digest.digest());
    }

    /** Digests computed in this process, by the files' locations, sizes and checksums or modification times. */
    private static final Map<String, String> KNOWN = new ConcurrentHashMap<>();

    /**
     * Reads every layout file of {@code checkpoint} once and returns its digest; files unchanged since this process
     * last digested them (same location, size, and checksum or modification time) are not read again.
     */
    public static String of(Checkpoint checkpoint) throws IOException {
        StringBuilder stamp = new StringBuilder();
        for (BlobInfo file : checkpoint.layoutFiles()) {
            var local = checkpoint.store().localFile(file.key());
            stamp.append(checkpoint.store().describe(file.key())).append(' ').append(file.size()).append(' ')
                    .append(file.crc32c().orElse(local.isPresent()
                            ? java.nio.file.Files.getLastModifiedTime(local.get()).toString() : "?")).append('\n');
        }
        String key = stamp.toString();
        String known = key.contains(" ?\n") ? null : KNOWN.get(key);
        if (known != null) {
            return known;
        }
        String digest = read(checkpoint);
        if (KNOWN.size() > 4096) {
            KNOWN.clear();
        }
        KNOWN.put(key, digest);
        return digest;
    }

    private static String read(Checkpoint checkpoint) throws IOException {
        List<String> sums = new ArrayList<>();
        byte[] buffer = new byte[1 << 20];
        for (BlobInfo file : checkpoint.layoutFiles()) {
            MessageDigest sha = sha256();
            try (InputStream in = checkpoint.store().read(file.key())) {
                for (int n; (n = in.read(buffer)) > 0; ) {
                    sha.update(buffer, 0, n);
                }
            }
            sums.add(HexFormat.of().formatHex(sha.digest()));
        }
        return of(sums);
    }

    public static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
