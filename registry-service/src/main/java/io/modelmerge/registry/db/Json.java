package io.modelmerge.registry.db;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import java.util.Map;

/** JSONB columns to and from Java values. */
final class Json {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    static final TypeReference<Map<String, String>> STRING_MAP = new TypeReference<>() {
    };
    static final TypeReference<Map<String, Double>> NUMBER_MAP = new TypeReference<>() {
    };
    static final TypeReference<Map<String, Object>> OBJECT_MAP = new TypeReference<>() {
    };
    static final TypeReference<List<Map<String, Object>>> OBJECT_LIST = new TypeReference<>() {
    };
    static final TypeReference<List<String>> STRING_LIST = new TypeReference<>() {
    };

    private Json() {
    }

    static String write(Object value) {
        try {
            return MAPPER.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("Cannot store as JSON: " + e.getMessage(), e);
        }
    }

    static <T> T read(String json, TypeReference<T> type) {
        try {
            return MAPPER.readValue(json, type);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("Stored JSON does not parse: " + e.getMessage(), e);
        }
    }

    static <T> T read(String json, Class<T> type) {
        try {
            return MAPPER.readValue(json, type);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("Stored JSON does not parse: " + e.getMessage(), e);
        }
    }
}
