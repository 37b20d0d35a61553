package io.modelmerge.registry.content;

import java.util.List;

/**
 * What is at a storage URI once read and checksummed: the kind of checkpoint found there, its files and summary,
 * and the digest that identifies the content (sha256 over the sorted file sha256s).
 *
 * @param storageUri  the URI, normalised (directories end in {@code /})
 * @param fileBaseUri the directory file paths are relative to (the URI itself, or a file's directory)
 * @param adapter     whether a PEFT adapter was found
 * @param delta       whether a stored delta was found
 */
public record StoredContent(String storageUri, String fileBaseUri, boolean adapter, boolean delta, List<StoredFile> files,
                            ContentSummary summary, String contentDigest, boolean allTensorsF32) {
    public StoredContent {
        files = List.copyOf(files);
    }
}
