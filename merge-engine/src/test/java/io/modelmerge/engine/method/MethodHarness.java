package io.modelmerge.engine.method;

import io.modelmerge.engine.exec.TensorPasses;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs a method on in-memory arrays the way the executor does (its passes through the executor's own
 * {@link TensorPasses}, then the merge), in blocks of a chosen size so block boundaries and vector tails are
 * exercised.
 */
final class MethodHarness {
    private MethodHarness() {
    }

    static float[] merge(MergeMethod method, float[] base, float[][] models, List<Map<String, Object>> perModel,
                         Map<String, Object> global, long seed, int blockSize, int workers) {
        return merge(method, base, models, perModel, global, seed, blockSize, workers, models[0].length);
    }

    /** As the executor: {@code columns} is the row length; row-aligned methods get blocks of whole rows. */
    static float[] merge(MergeMethod method, float[] base, float[][] models, List<Map<String, Object>> perModel,
                         Map<String, Object> global, long seed, int anyBlockSize, int workers, int columns) {
        Map<String, Object> globals = new HashMap<>();
        for (ParameterDef def : method.globalParameters()) {
            def.defaultValue().ifPresent(v -> globals.put(def.name(), v));
        }
        globals.putAll(global);
        List<Map<String, Object>> models2 = new ArrayList<>();
        for (Map<String, Object> own : perModel) {
            Map<String, Object> values = new HashMap<>();
            for (ParameterDef def : method.modelParameters()) {
                def.defaultValue().ifPresent(v -> values.put(def.name(), v));
            }
            values.putAll(own);
            models2.add(values);
        }
        int n = models[0].length;
        TensorMerge merge = method.forTensor(new TensorParameters("t", n, columns, models2, globals, seed));
        int blockSize = merge.rowAligned() ? Math.max(1, anyBlockSize / columns) * columns : anyBlockSize;
        int blocks = (n + blockSize - 1) / blockSize;
        try {
            TensorPasses.run(merge, blocks, workers, (b, only) -> block(b, blockSize, base, models).readingOnly(only),
                    TensorPasses.Ranges.sequential());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        float[] out = new float[n];
        for (int b = 0; b < blocks; b++) {
            Block block = block(b, blockSize, base, models);
            float[] part = new float[block.length()];
            merge.merge(block, part);
            System.arraycopy(part, 0, out, (int) block.offset(), block.length());
        }
        return out;
    }

    static float[] merge(MergeMethod method, float[] base, float[][] models, List<Map<String, Object>> perModel,
                         Map<String, Object> global) {
        return merge(method, base, models, perModel, global, 7, 4, 2);
    }

    private static Block block(int b, int size, float[] base, float[][] models) {
        int offset = b * size;
        int length = Math.min(size, models[0].length - offset);
        float[][] slices = new float[models.length][];
        for (int m = 0; m < models.length; m++) {
            slices[m] = java.util.Arrays.copyOfRange(models[m], offset, offset + length);
        }
        return new Block(offset, length, base == null ? null : java.util.Arrays.copyOfRange(base, offset, offset + length), slices);
    }

    static float[] plus(float[] base, float[] delta) {
        float[] out = new float[base.length];
        for (int i = 0; i < base.length; i++) {
            out[i] = base[i] + delta[i];
        }
        return out;
    }
}
