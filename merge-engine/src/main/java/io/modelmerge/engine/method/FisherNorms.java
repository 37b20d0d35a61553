package io.modelmerge.engine.method;

import java.util.Optional;

/**
 * For {@code fisher} with {@code normalize_fishers}: each model's Fisher norm over the whole model (every tensor
 * merged with Fishers), summed in one ordered pass and given to every such tensor as {@link FisherMerge#FISHER_NORM}.
 * The squares add in tensor and element order, so the norm is the same at any thread count.
 */
final class FisherNorms implements ModelWidePass {
    private final double[] squares;
    private double[] norms;

    FisherNorms(int models) {
        this.squares = new double[models];
    }

    @Override
    public boolean reads(TensorParameters tensor) {
        return Boolean.TRUE.equals(tensor.global().get(MergeMethod.COMPANIONS_PRESENT))
                && tensor.flag("normalize_fishers");
    }

    @Override
    public Optional<Pass<?>> nextPass() {
        if (norms != null) {
            return Optional.empty();
        }
        return Optional.of(Pass.<TensorMerge.Accumulator>of("Fisher norms", () -> this::addSquares, parts -> {
            norms = new double[squares.length];
            for (int m = 0; m < norms.length; m++) {
                norms[m] = Math.sqrt(squares[m]);
            }
        }).inOrder().readingOnly(m -> m >= squares.length)); // the companions follow the models
    }

    /**
     * Each model's sum is one chain of dependent additions (its order fixes the norm's bits), so two models' chains
     * run side by side in one loop, in locals: each waits on its own last addition only.
     */
    private void addSquares(Block block) {
        int n = squares.length;
        int length = block.length();
        int m = 0;
        for (; m + 1 < n; m += 2) {
            float[] first = block.models()[n + m]; // the companions follow the models
            float[] second = block.models()[n + m + 1];
            double firstSum = squares[m];
            double secondSum = squares[m + 1];
            for (int i = 0; i < length; i++) {
                firstSum += (double) first[i] * first[i];
                secondSum += (double) second[i] * second[i];
            }
            squares[m] = firstSum;
            squares[m + 1] = secondSum;
        }
        if (m < n) {
            float[] fisher = block.models()[n + m];
            double sum = squares[m];
            for (int i = 0; i < length; i++) {
                sum += (double) fisher[i] * fisher[i];
            }
            squares[m] = sum;
        }
    }

    @Override
    public TensorParameters apply(TensorParameters tensor) {
        return tensor.withModelNumbers(FisherMerge.FISHER_NORM, norms);
    }

    @Override
    public double[] result() {
        return norms.clone();
    }

    @Override
    public void restore(double[] result) {
        if (result.length != squares.length) {
            throw new IllegalArgumentException("Fisher norms for " + result.length + " models, expected " + squares.length);
        }
        norms = result.clone();
    }
}
