package io.modelmerge.storage.testing;

import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.blob.BlobStore;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;

/** Passes every call through to a store and counts the bytes and requests of reads. */
public final class CountingBlobStore implements BlobStore {
    private final BlobStore delegate;
    public final AtomicLong bytesRead = new AtomicLong();
    public final AtomicLong reads = new AtomicLong();

    public CountingBlobStore(BlobStore delegate) {
        this.delegate = delegate;
    }

    @Override
    public URI root() {
        return delegate.root();
    }

    @Override
    public Optional<BlobInfo> head(String key) throws IOException {
        return delegate.head(key);
    }

    @Override
    public InputStream read(String key, long offset, long length) throws IOException {
        reads.incrementAndGet();
        return new FilterInputStream(delegate.read(key, offset, length)) {
            @Override
            public int read() throws IOException {
                int b = super.read();
                if (b >= 0) {
                    bytesRead.incrementAndGet();
                }
                return b;
            }

            @Override
            public int read(byte[] buffer, int off, int len) throws IOException {
                int n = super.read(buffer, off, len);
                if (n > 0) {
                    bytesRead.addAndGet(n);
                }
                return n;
            }
        };
    }

    @Override
    public BlobInfo write(String key, InputStream content) throws IOException {
        return delegate.write(key, content);
    }

    @Override
    public Optional<BlobInfo> writeIfAbsent(String key, InputStream content) throws IOException {
        return delegate.writeIfAbsent(key, content);
    }

    @Override
    public List<BlobInfo> list(String prefix) throws IOException {
        return delegate.list(prefix);
    }

    @Override
    public void delete(String key) throws IOException {
        delegate.delete(key);
    }

    @Override
    public URI downloadUrl(String key, Duration validFor) {
        return delegate.downloadUrl(key, validFor);
    }
}
