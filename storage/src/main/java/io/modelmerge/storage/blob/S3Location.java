package io.modelmerge.storage.blob;

import java.net.URI;

/** The bucket and key prefix of an {@code s3://bucket/prefix} URI; a non-empty prefix always ends with '/'. */
public record S3Location(String bucket, String prefix) {

    public static S3Location parse(URI uri) {
        if (!"s3".equals(uri.getScheme()) || uri.getAuthority() == null || uri.getAuthority().isEmpty()) {
            throw new IllegalArgumentException("Not an s3://bucket/prefix URI: " + uri);
        }
        String path = uri.getPath() == null ? "" : uri.getPath();
        String prefix = path.startsWith("/") ? path.substring(1) : path;
        if (!prefix.isEmpty() && !prefix.endsWith("/")) {
            prefix += "/";
        }
        return new S3Location(uri.getAuthority(), prefix);
    }
}
