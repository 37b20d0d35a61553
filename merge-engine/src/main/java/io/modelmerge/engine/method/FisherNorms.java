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

    private void addSquares(Block block) {
        int n = squares.length;
        for (int m = 0; m < n; m++) {
            float[] fisher = block.models()[n + m]; // the companions follow the models
            for (int i = 0; i < block.length(); i++) {
                squares[m] += (double) fisher[i] * fisher[i];
            }
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
