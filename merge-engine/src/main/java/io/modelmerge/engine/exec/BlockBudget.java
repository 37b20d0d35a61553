package io.modelmerge.engine.exec;

import io.modelmerge.engine.method.MergeMethod;
import io.modelmerge.engine.method.TensorMerge;
import io.modelmerge.engine.recipe.RecipeException;
import java.util.ArrayList;
import java.util.List;

/**
 * How a merge's memory budget is spent: the block length (elements per unit of work), the work buffers' length
 * (a block, or the longest row where a row-aligned method needs whole rows), and how many inputs a buffer set
 * holds. Half the budget goes to the workers' buffers; the rest is left for LoRA-applied tensors.
 *
 * @param block  elements per block: a multiple of {@link TensorMerge#BLOCK_UNIT}, at most {@link #MAX_BLOCK}
 * @param buffer elements per work buffer
 * @param width  input buffers per worker: the most inputs of any tensor, plus one
 */
record BlockBudget(int block, int buffer, int width) {
    /** Largest block, in elements: four F32 work arrays of this size stay in a core's L2 cache. */
    static final int MAX_BLOCK = 1 << 17;

    static BlockBudget of(List<PlannedTensor> plan, MergeOptions options) {
        int width = plan.stream().mapToInt(t -> t.models().size() + 1).max().orElse(1);
        long perThread = options.memoryBytes() / 2 / options.threads();
        long fit = perThread / ((width + 1) * 4L + 4L) / TensorMerge.BLOCK_UNIT * TensorMerge.BLOCK_UNIT;
        int block = (int) Math.max(TensorMerge.BLOCK_UNIT, Math.min(MAX_BLOCK, fit));
        long longestRow = plan.stream().filter(t -> !t.copy()).mapToLong(t -> t.parameters().columns()).max().orElse(1);
        return new BlockBudget(block, (int) Math.max(block, longestRow), width);
    }

    /**
     * Refuses a plan whose buffers plus any tensor's materialised inputs and the method's own state for it exceed
     * the budget.
     */
    void check(List<PlannedTensor> plan, List<InputModel> inputs, MergeMethod method, MergeOptions options)
            throws RecipeException {
        long work = (long) options.threads() * workspaceBytes();
        for (PlannedTensor t : plan) {
            long held = work + (t.copy() ? 0 : method.tensorStateBytes(t.parameters()));
            List<PlannedTensor.Input> all = new ArrayList<>(t.models());
            t.base().ifPresent(all::add);
            for (PlannedTensor.Input in : all) {
                held += inputs.get(in.model()).materializedBytes(in.tensor());
            }
            if (held > options.memoryBytes()) {
                throw new RecipeException("tensor '" + t.name() + "' needs " + held + " bytes in memory (LoRA deltas"
                        + " applied in F32, what " + method.name() + " holds for it, and work buffers), over the"
                        + " budget of " + options.memoryBytes());
            }
        }
    }

    /** One worker's buffers: an F32 array per input plus one for the output, and the narrowed output. */
    private long workspaceBytes() {
        return (long) buffer * ((width + 1) * 4L + 4L);
    }

    /** The largest run of whole rows of {@code columns} elements that fits a block (at least one row). */
    int rowBlock(long columns) {
        return (int) (Math.max(1, block / columns) * columns);
    }

    /** Blocks of {@code size} elements covering {@code elements}. */
    static int count(long elements, int size) {
        return (int) ((elements + size - 1) / size);
    }
}
