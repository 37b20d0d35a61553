package io.modelmerge.registry.service;

import java.util.Map;

/** {@code POST /models}. */
public record CreateModelRequest(String name, String description, Map<String, String> tags) {
}
