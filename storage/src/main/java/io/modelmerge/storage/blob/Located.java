package io.modelmerge.storage.blob;

/**
 * A store and a key inside it: where a storage location points.
 *
 * @param key  the object ({@code file} true) or directory prefix ({@code ""} for the store's root)
 * @param file whether the location names one object rather than a directory
 */
public record Located(BlobStore store, String key, boolean file) {
}
