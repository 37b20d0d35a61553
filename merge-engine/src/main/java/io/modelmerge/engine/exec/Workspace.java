package io.modelmerge.engine.exec;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** One worker's buffers, reused across blocks and tensors: the inputs widened to F32, the output, narrowed. */
final class Workspace {
    final float[][] inputs;
    final float[] out;
    final MemorySegment narrowed;

    Workspace(int inputs, int length) {
        this.inputs = new float[inputs][length];
        this.out = new float[length];
        this.narrowed = Arena.ofAuto().allocate(length * 4L, 64);
    }

    /** Each worker's workspace for blocks of {@code budget}, made on first use. */
    static ThreadLocal<Workspace> perThread(BlockBudget budget) {
        return ThreadLocal.withInitial(() -> new Workspace(budget.width(), budget.buffer()));
    }
}
