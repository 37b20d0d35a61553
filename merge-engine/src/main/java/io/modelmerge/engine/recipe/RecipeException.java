package io.modelmerge.engine.recipe;

/** A recipe that cannot be merged: unknown keys or methods, bad parameters, inputs that do not line up. */
public final class RecipeException extends Exception {
    public RecipeException(String message) {
        super(message);
    }
}
