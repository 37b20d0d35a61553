package io.modelmerge.engine.compute;

/** A dense F32 matrix, row-major: element (i, j) is {@code values[i·columns + j]}. */
public record Matrix(int rows, int columns, float[] values) {

    public Matrix {
        if (rows < 0 || columns < 0 || (long) rows * columns != values.length) {
            throw new IllegalArgumentException("a " + rows + "×" + columns + " matrix needs " + (long) rows * columns
                    + " values, got " + values.length);
        }
    }

    public float get(int row, int column) {
        return values[row * columns + column];
    }

    /** The transpose, copied. */
    public Matrix transpose() {
        float[] t = new float[values.length];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < columns; j++) {
                t[j * rows + i] = values[i * columns + j];
            }
        }
        return new Matrix(columns, rows, t);
    }
}
