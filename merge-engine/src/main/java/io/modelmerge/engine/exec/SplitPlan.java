package io.modelmerge.engine.exec;

import java.util.List;

/**
 * How a merge splits over workers: one task per output shard, each merging and writing that shard alone, after
 * a first task for the model-wide statistic where the method needs one, and before a commit that writes the rest.
 *
 * @param modelWide whether {@link MergeExecutor#statistics} must run before the shards
 * @param bytes     the output's tensor bytes
 */
public record SplitPlan(List<Shard> shards, boolean modelWide, long bytes) {

    public SplitPlan {
        shards = List.copyOf(shards);
    }

    /** Shard {@code index} (0-based): its file name, its tensors in file order, their bytes. */
    public record Shard(int index, String file, List<String> tensors, long bytes) {
        public Shard {
            tensors = List.copyOf(tensors);
        }
    }
}
