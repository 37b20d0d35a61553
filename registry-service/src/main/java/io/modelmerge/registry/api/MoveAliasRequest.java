package io.modelmerge.registry.api;

/** {@code PUT /models/{ns}/{name}/aliases/{alias}}. */
public record MoveAliasRequest(Integer version) {
}
