package io.modelmerge.engine.exec;

import java.util.Random;

/** Deterministic pseudo-random test values in [-1, 1) that differ per model seed, tensor and element. */
final class TestNoise {
    private TestNoise() {
    }

    static double of(long seed, String tensor, long i) {
        return new Random(seed * 1_000_003L + tensor.hashCode() * 31L + i).nextDouble() * 2 - 1;
    }
}
