package io.modelmerge.engine.exec;

import io.modelmerge.storage.checkpoint.CheckpointWriter;
import io.modelmerge.storage.checkpoint.ShardIndex;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * A merge's output shards in the staging directory: blocks are written at their final offsets from any thread,
 * and write-back runs beside the merge ({@link WriteBehind}).
 */
final class OutputWriter implements AutoCloseable {
    /** Input bytes merged between background flushes. */
    private static final long FLUSH_EVERY = 256L << 20;

    private final CheckpointWriter writer;
    private final WriteBehind writeBehind;

    /** The whole checkpoint of {@code specs}, or only shard {@code shard} of it. */
    OutputWriter(Path staging, List<TensorSpec> specs, long shardSize, OptionalInt shard) throws IOException {
        Files.createDirectories(staging);
        this.writer = shard.isPresent()
                ? CheckpointWriter.createShard(staging, specs, Map.of("format", "pt"), shardSize, shard.getAsInt())
                : CheckpointWriter.create(staging, specs, Map.of("format", "pt"), shardSize);
        this.writeBehind = new WriteBehind(writer::flush, FLUSH_EVERY);
    }

    /** Writes {@code data} at byte {@code offset} of tensor {@code tensor}; thread-safe. */
    void write(String tensor, long offset, MemorySegment data) throws IOException {
        writer.write(tensor, offset, data);
    }

    /** Starts a background flush if {@code bytesDone} has grown by a flush's worth and none is running. */
    void flushBehind(long bytesDone) {
        writeBehind.reached(bytesDone);
    }

    /** Waits for write-back, syncs and moves the shards into place; the files written (index included). */
    List<String> commit() throws IOException {
        writeBehind.await();
        writer.commit();
        List<String> files = new ArrayList<>(writer.fileNames());
        if (writer.sharded()) {
            files.add(ShardIndex.FILE_NAME);
        }
        return files;
    }

    @Override
    public void close() throws IOException {
        writeBehind.close();
        writer.close();
    }
}
