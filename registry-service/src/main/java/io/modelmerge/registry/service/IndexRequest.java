package io.modelmerge.registry.service;

/** {@code POST /index}: scan {@code uri} and register what it holds under {@code namespace}. */
public record IndexRequest(String uri, String namespace) {
}
