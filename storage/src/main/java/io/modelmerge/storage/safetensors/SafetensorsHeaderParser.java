package io.modelmerge.storage.safetensors;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Parses and validates a safetensors header from its raw bytes, so the same rules apply to a mapped local
 * file and to the first bytes of an object read with a ranged GET.
 *
 * <p>The rules are those of the reference implementation (huggingface/safetensors): the length prefix is at
 * most 100,000,000; the header is one JSON object; each tensor has a known dtype, a non-negative shape and
 * offsets whose length matches shape × dtype; tensors, ordered by offset, tile the data section exactly,
 * without overlap or hole; names are unique; {@code __metadata__} maps strings to strings.
 */
public final class SafetensorsHeaderParser {

    /** The reference implementation's limit on the JSON header's size. */
    public static final long MAX_HEADER_SIZE = 100_000_000L;

    private static final JsonFactory JSON = JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxStringLength((int) MAX_HEADER_SIZE)
                    .maxNestingDepth(64)
                    .build())
            .build();

    private SafetensorsHeaderParser() {
    }

    /**
     * Reads the header length from the first 8 bytes of a file of {@code fileSize} bytes and checks it fits.
     *
     * @param source names the file in error messages
     */
    public static long headerSize(String source, byte[] prefix, long fileSize) throws SafetensorsFormatException {
        if (fileSize < SafetensorsHeader.LENGTH_PREFIX || prefix.length < SafetensorsHeader.LENGTH_PREFIX) {
            throw new SafetensorsFormatException(source,
                    "header length missing: the file has " + fileSize + " bytes, fewer than the 8 of the length prefix");
        }
        long size = ByteBuffer.wrap(prefix, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        if (size < 0 || size > MAX_HEADER_SIZE) {
            throw new SafetensorsFormatException(source, "header length " + Long.toUnsignedString(size)
                    + " is over the limit of " + MAX_HEADER_SIZE + " bytes");
        }
        if (SafetensorsHeader.LENGTH_PREFIX + size > fileSize) {
            throw new SafetensorsFormatException(source, "header length " + size
                    + " runs past the end of the file (" + fileSize + " bytes)");
        }
        return size;
    }

    /**
     * Parses the JSON header and validates it against a file of {@code fileSize} bytes.
     *
     * @param json the {@code headerSize} bytes after the length prefix
     */
    public static SafetensorsHeader parse(String source, byte[] json, long fileSize) throws SafetensorsFormatException {
        long headerSize = json.length;
        Parsed parsed = parseJson(source, json);
        long dataSize = fileSize - SafetensorsHeader.LENGTH_PREFIX - headerSize;
        List<TensorInfo> tensors = validate(source, parsed.tensors(), dataSize);
        return new SafetensorsHeader(tensors, parsed.metadata(), headerSize);
    }

    private record RawTensor(String name, DType dtype, long[] shape, long begin, long end) {
    }

    private record Parsed(List<RawTensor> tensors, Map<String, String> metadata) {
    }

    private static Parsed parseJson(String source, byte[] json) throws SafetensorsFormatException {
        List<RawTensor> tensors = new ArrayList<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        Set<String> seen = new HashSet<>();
        try (JsonParser p = JSON.createParser(json)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new SafetensorsFormatException(source, "header is not a JSON object");
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                if (!seen.add(name)) {
                    throw new SafetensorsFormatException(source, name, "duplicate name in the header");
                }
                p.nextToken();
                if (name.equals("__metadata__")) {
                    readMetadata(source, p, metadata);
                } else {
                    tensors.add(readTensor(source, name, p));
                }
            }
            if (p.currentToken() != JsonToken.END_OBJECT || p.nextToken() != null) {
                throw new SafetensorsFormatException(source, "header has content after its JSON object");
            }
        } catch (SafetensorsFormatException e) {
            throw e;
        } catch (JsonProcessingException e) {
            throw new SafetensorsFormatException(source, "header is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new SafetensorsFormatException(source, "header cannot be read: " + e.getMessage());
        }
        return new Parsed(tensors, metadata);
    }

    private static void readMetadata(String source, JsonParser p, Map<String, String> into) throws IOException {
        if (p.currentToken() == JsonToken.VALUE_NULL) {
            return;
        }
        if (p.currentToken() != JsonToken.START_OBJECT) {
            throw new SafetensorsFormatException(source, "__metadata__ is not an object of strings");
        }
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String key = p.currentName();
            if (p.nextToken() != JsonToken.VALUE_STRING) {
                throw new SafetensorsFormatException(source, "__metadata__ value of '" + key + "' is not a string");
            }
            if (into.put(key, p.getText()) != null) {
                throw new SafetensorsFormatException(source, "__metadata__ has the key '" + key + "' twice");
            }
        }
    }

    private static RawTensor readTensor(String source, String name, JsonParser p) throws IOException {
        if (p.currentToken() != JsonToken.START_OBJECT) {
            throw new SafetensorsFormatException(source, name, "entry is not an object");
        }
        DType dtype = null;
        long[] shape = null;
        long[] offsets = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            p.nextToken();
            switch (field) {
                case "dtype" -> {
                    if (p.currentToken() != JsonToken.VALUE_STRING) {
                        throw new SafetensorsFormatException(source, name, "dtype is not a string");
                    }
                    String text = p.getText();
                    dtype = DType.parse(text).orElseThrow(() -> new SafetensorsFormatException(source, name,
                            "unknown dtype '" + text + "'"));
                }
                case "shape" -> shape = readLongs(source, name, "shape", p);
                case "data_offsets" -> {
                    offsets = readLongs(source, name, "data_offsets", p);
                    if (offsets.length != 2) {
                        throw new SafetensorsFormatException(source, name,
                                "data_offsets has " + offsets.length + " entries, not 2");
                    }
                }
                // The reference implementation ignores fields it does not know; so do we.
                default -> p.skipChildren();
            }
        }
        if (dtype == null || shape == null || offsets == null) {
            throw new SafetensorsFormatException(source, name,
                    "entry lacks " + (dtype == null ? "dtype" : shape == null ? "shape" : "data_offsets"));
        }
        return new RawTensor(name, dtype, shape, offsets[0], offsets[1]);
    }

    private static long[] readLongs(String source, String tensor, String field, JsonParser p) throws IOException {
        if (p.currentToken() != JsonToken.START_ARRAY) {
            throw new SafetensorsFormatException(source, tensor, field + " is not an array");
        }
        List<Long> values = new ArrayList<>();
        while (p.nextToken() != JsonToken.END_ARRAY) {
            if (p.currentToken() != JsonToken.VALUE_NUMBER_INT) {
                throw new SafetensorsFormatException(source, tensor, field + " has a non-integer entry: " + p.getText());
            }
            if (p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
                throw new SafetensorsFormatException(source, tensor, field + " has an entry out of range: " + p.getText());
            }
            long value = p.getLongValue();
            if (value < 0) {
                throw new SafetensorsFormatException(source, tensor, field + " has a negative entry: " + value);
            }
            values.add(value);
        }
        return values.stream().mapToLong(Long::longValue).toArray();
    }

    private static List<TensorInfo> validate(String source, List<RawTensor> raw, long dataSize)
            throws SafetensorsFormatException {
        List<TensorInfo> tensors = new ArrayList<>(raw.size());
        for (RawTensor t : raw) {
            if (t.begin() > t.end()) {
                throw new SafetensorsFormatException(source, t.name(),
                        "data_offsets out of order: begin " + t.begin() + " > end " + t.end());
            }
            if (t.end() > dataSize) {
                throw new SafetensorsFormatException(source, t.name(), "data_offsets end " + t.end()
                        + " is past the end of the file (data section has " + dataSize + " bytes)");
            }
            long expected;
            try {
                expected = t.dtype().byteLength(TensorInfo.elementCount(t.shape()));
            } catch (ArithmeticException e) {
                throw new SafetensorsFormatException(source, t.name(),
                        "shape " + java.util.Arrays.toString(t.shape()) + " of " + t.dtype() + " has no valid byte length: "
                                + e.getMessage());
            }
            if (expected != t.end() - t.begin()) {
                throw new SafetensorsFormatException(source, t.name(), "byte length " + (t.end() - t.begin())
                        + " does not match shape " + java.util.Arrays.toString(t.shape()) + " of " + t.dtype()
                        + " (" + expected + " bytes)");
            }
            tensors.add(new TensorInfo(t.name(), t.dtype(), t.shape(), t.begin(), t.end()));
        }
        tensors.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long position = 0;
        TensorInfo previous = null;
        for (TensorInfo t : tensors) {
            if (t.begin() < position) {
                throw new SafetensorsFormatException(source, t.name(), "data_offsets [" + t.begin() + ", " + t.end()
                        + ") overlap tensor '" + previous.name() + "' ending at " + position);
            }
            if (t.begin() > position) {
                throw new SafetensorsFormatException(source, t.name(), "data_offsets leave a hole: bytes ["
                        + position + ", " + t.begin() + ") belong to no tensor");
            }
            position = t.end();
            previous = t;
        }
        if (position != dataSize) {
            throw new SafetensorsFormatException(source, "tensors cover " + position
                    + " bytes but the data section has " + dataSize + " (the offsets must cover it exactly)");
        }
        return tensors;
    }
}
