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

    /** Reads every layout file of {@code checkpoint} once and returns its digest. */
    public static String of(Checkpoint checkpoint) throws IOException {
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
