package io.modelmerge.engine.method;

import java.util.List;
import java.util.TreeMap;

/**
 * Sums of a few doubles over a tensor, gathered block by block and added up in block order, so the total does
 * not depend on how blocks were spread over threads (the same recipe and seed write the same bytes).
 */
final class BlockSums implements TensorMerge.Accumulator {

    /** What one block adds to the sums. */
    @FunctionalInterface
    interface Summand {
        void add(Block block, double[] sums);
    }

    private final int width;
    private final Summand summand;
    private final TreeMap<Long, double[]> perBlock = new TreeMap<>();

    BlockSums(int width, Summand summand) {
        this.width = width;
        this.summand = summand;
    }

    @Override
    public void add(Block block) {
        double[] sums = new double[width];
        summand.add(block, sums);
        perBlock.put(block.offset(), sums);
    }

    /** The sums over every block the accumulators saw, in block order. */
    static double[] total(List<TensorMerge.Accumulator> accumulators) {
        TreeMap<Long, double[]> all = new TreeMap<>();
        int width = 0;
        for (TensorMerge.Accumulator a : accumulators) {
            BlockSums sums = (BlockSums) a;
            all.putAll(sums.perBlock);
            width = sums.width;
        }
        double[] total = new double[width];
        for (double[] sums : all.values()) {
            for (int i = 0; i < width; i++) {
                total[i] += sums[i];
            }
        }
        return total;
    }
}
