package io.modelmerge.engine.exec;

import io.modelmerge.engine.method.Block;
import io.modelmerge.engine.method.Pass;
import io.modelmerge.engine.method.TensorMerge;
import java.io.IOException;
import java.util.List;
import java.util.Optional;
import java.util.function.IntConsumer;
import java.util.function.IntFunction;
import java.util.function.IntPredicate;
import java.util.stream.Stream;

/**
 * Runs a tensor merge's passes over its blocks, the one way the executor and the method tests both use: per
 * {@link Pass}, the blocks split into contiguous ranges (at most one per worker; a single range when the merge's passes
 * are ordered), one accumulator per range fed the range's blocks in order (every {@code stride}-th), and the
 * accumulators handed to the pass's end in range order.
 */
public final class TensorPasses {
    private TensorPasses() {
    }

    /** Runs {@code ranges} range tasks, in parallel or not. */
    @FunctionalInterface
    public interface Ranges {
        void run(int ranges, IntConsumer range) throws IOException;

        /** One range after another, in the calling thread. */
        static Ranges sequential() {
            return (ranges, range) -> {
                for (int r = 0; r < ranges; r++) {
                    range.accept(r);
                }
            };
        }
    }

    /** Reads block {@code b} of the inputs a pass reads ({@link Pass#inputs}), in the calling worker. */
    @FunctionalInterface
    public interface Loader {
        Block load(int b, Optional<IntPredicate> only);
    }

    /**
     * @param blocks  the tensor's block count
     * @param workers how many ranges the blocks may split into
     * @param load    reads a block
     */
    public static void run(TensorMerge merge, int blocks, int workers, Loader load, Ranges runner)
            throws IOException {
        for (Optional<Pass<?>> pass = merge.nextPass(); pass.isPresent(); pass = merge.nextPass()) {
            run(pass.get(), blocks, workers, load, runner);
        }
    }

    private static <A extends TensorMerge.Accumulator> void run(Pass<A> pass, int blocks, int workers,
                                                                Loader load, Ranges runner)
            throws IOException {
        List<A> accumulators = accumulators(pass, pass.ordered() ? 1 : ranges(blocks, workers));
        feed(accumulators, blocks, pass.stride(), b -> load.load(b, pass.inputs()), runner);
        pass.end().accept(accumulators);
    }

    /** {@code count} fresh accumulators of the pass. */
    static <A extends TensorMerge.Accumulator> List<A> accumulators(Pass<A> pass, int count) {
        return Stream.generate(pass.accumulator()).limit(count).toList();
    }

    /** How many contiguous ranges {@code blocks} split into over {@code workers}: at least one, at most a block each. */
    static int ranges(int blocks, int workers) {
        return Math.min(workers, Math.max(1, blocks));
    }

    /**
     * Feeds blocks [0, blocks), every {@code stride}-th, to the accumulators: range r of {@code accumulators.size()}
     * contiguous ranges, in block order, to accumulator r.
     */
    static void feed(List<? extends TensorMerge.Accumulator> accumulators, int blocks, int stride, IntFunction<Block> load,
                     Ranges runner) throws IOException {
        int ranges = accumulators.size();
        runner.run(ranges, r -> {
            for (int b = (int) ((long) blocks * r / ranges); b < (long) blocks * (r + 1) / ranges; b++) {
                if (b % stride == 0) {
                    accumulators.get(r).add(load.apply(b));
                }
            }
        });
    }
}
