package io.modelmerge.registry.content;

import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.ChecksumMismatchException;
import io.modelmerge.storage.blob.Crc32c;
import io.modelmerge.storage.checkpoint.ContentDigest;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * SHA-256 and CRC32C of a stored file in one streaming pass, checked against the size the store listed and the
 * CRC32C it keeps (S3 objects uploaded with one), so a truncated or corrupted object is caught here.
 */
final class FileDigests {
    private FileDigests() {
    }

    static StoredFile of(BlobStore store, BlobInfo blob, String path) throws IOException {
        MessageDigest sha256 = ContentDigest.sha256();
        CRC32C crc = new CRC32C();
        long size = 0;
        byte[] buffer = new byte[1 << 20];
        try (InputStream in = store.read(blob.key())) {
            for (int n; (n = in.read(buffer)) > 0; ) {
                sha256.update(buffer, 0, n);
                crc.update(buffer, 0, n);
                size += n;
            }
        }
        if (size != blob.size()) {
            throw new ChecksumMismatchException(store.describe(blob.key()) + ": listed as " + blob.size()
                    + " bytes but " + size + " were read");
        }
        String crc32c = Crc32c.encode(crc.getValue());
        if (blob.crc32c().isPresent() && !blob.crc32c().get().equals(crc32c)) {
            throw new ChecksumMismatchException(store.describe(blob.key()) + ": the store's CRC32C is "
                    + blob.crc32c().get() + " but the content's is " + crc32c);
        }
        return new StoredFile(path, size, HexFormat.of().formatHex(sha256.digest()), crc32c);
    }

    /** sha256 over the sorted sha256s, one per line: the identity of a set of files' content. */
    static String contentDigest(Iterable<StoredFile> files) {
        List<String> sums = new ArrayList<>();
        files.forEach(f -> sums.add(f.sha256()));
        return ContentDigest.of(sums);
    }
}
