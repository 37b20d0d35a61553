package io.modelmerge.storage.checkpoint;

import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.safetensors.SafetensorsHeader;
import io.modelmerge.storage.safetensors.SafetensorsHeaderParser;
import java.io.IOException;
import java.util.Arrays;

/**
 * Reads a safetensors header from a store with ranged reads: one read of the first 64 KiB covers most
 * headers; a larger header takes one more. The tensor data is never read.
 */
final class HeaderReader {
    private static final int FIRST_READ = 64 << 10;

    private HeaderReader() {
    }

    static SafetensorsHeader read(BlobStore store, BlobInfo blob) throws IOException {
        String source = store.describe(blob.key());
        int first = (int) Math.min(blob.size(), FIRST_READ);
        byte[] head = store.readRange(blob.key(), 0, first);
        long headerSize = SafetensorsHeaderParser.headerSize(source, head, blob.size());
        int end = Math.toIntExact(SafetensorsHeader.LENGTH_PREFIX + headerSize);
        byte[] json;
        if (end <= head.length) {
            json = Arrays.copyOfRange(head, SafetensorsHeader.LENGTH_PREFIX, end);
        } else {
            byte[] rest = store.readRange(blob.key(), head.length, end - head.length);
            json = new byte[Math.toIntExact(headerSize)];
            System.arraycopy(head, SafetensorsHeader.LENGTH_PREFIX, json, 0, head.length - SafetensorsHeader.LENGTH_PREFIX);
            System.arraycopy(rest, 0, json, head.length - SafetensorsHeader.LENGTH_PREFIX, rest.length);
        }
        return SafetensorsHeaderParser.parse(source, json, blob.size());
    }
}
