package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.ExactSum;
import java.util.List;

/**
 * Sums of a few doubles over a tensor. Each block is cut into units that start at fixed places of the tensor
 * ({@link #CHUNK} elements from the tensor's start, or one row for row-aligned merges: the executor's blocks are
 * made of whole units); a unit's partial sums depend on its elements alone, and the partials add up exactly.
 * So the totals do not depend on how blocks were sized or spread over threads: the same recipe and seed write
 * the same bytes at any memory budget and thread count.
 */
final class BlockSums implements TensorMerge.Accumulator {
    /** The unit of tensor-wide sums. */
    static final int CHUNK = TensorMerge.BLOCK_UNIT;

    /** What the elements [from, from + length) of a block add to each of the sums. */
    @FunctionalInterface
    interface Summand {
        void add(Block block, int from, int length, double[] partial);
    }

    private final int unit;
    private final Summand summand;
    private final ExactSum[] sums;
    private final double[] partial;

    /** {@code width} sums over units of {@code unit} elements. */
    BlockSums(int width, int unit, Summand summand) {
        this.unit = unit;
        this.summand = summand;
        this.sums = new ExactSum[width];
        this.partial = new double[width];
        for (int i = 0; i < width; i++) {
            sums[i] = new ExactSum();
        }
    }

    /** Sums over the tensor's {@link #CHUNK}-element runs. */
    BlockSums(int width, Summand summand) {
        this(width, CHUNK, summand);
    }

    @Override
    public void add(Block block) {
        for (int from = 0; from < block.length(); from += unit) {
            java.util.Arrays.fill(partial, 0);
            summand.add(block, from, Math.min(unit, block.length() - from), partial);
            for (int i = 0; i < partial.length; i++) {
                sums[i].add(partial[i]);
            }
        }
    }

    /** The sums over every block the accumulators saw. */
    static double[] total(List<BlockSums> accumulators) {
        ExactSum[] all = null;
        for (BlockSums part : accumulators) {
            if (all == null) {
                all = new ExactSum[part.sums.length];
                for (int i = 0; i < all.length; i++) {
                    all[i] = new ExactSum();
                }
            }
            for (int i = 0; i < all.length; i++) {
                all[i].add(part.sums[i]);
            }
        }
        double[] total = new double[all == null ? 0 : all.length];
        for (int i = 0; i < total.length; i++) {
            total[i] = all[i].value();
        }
        return total;
    }
}
