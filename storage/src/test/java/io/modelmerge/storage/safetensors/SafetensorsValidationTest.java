package io.modelmerge.storage.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Every rule of the format, broken once each; then thousands of random mutations of valid headers. */
class SafetensorsValidationTest {

    private static byte[] file(long declaredLength, byte[] json, int dataBytes) {
        ByteBuffer buffer = ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        buffer.putLong(declaredLength).put(json);
        return buffer.array();
    }

    private static byte[] file(String json, int dataBytes) {
        byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
        return file(bytes.length, bytes, dataBytes);
    }

    private static String f32(String name, int elements, long begin, long end) {
        return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[" + elements + "],\"data_offsets\":[" + begin + "," + end + "]}";
    }

    /** rule, file bytes, the tensor the message must name (or null), a phrase the message must contain. */
    static Stream<Arguments> malformedFiles() {
        return Stream.of(
                Arguments.of("header length missing", new byte[5], null, "header length missing"),
                Arguments.of("header length over 100 MB", file(100_000_001L, new byte[0], 0), null,
                        "over the limit of 100000000"),
                Arguments.of("header length past the end", file(1000, "{}".getBytes(StandardCharsets.UTF_8), 0), null,
                        "runs past the end of the file"),
                Arguments.of("header not JSON", file("{\"w\": ", 0), null, "not valid JSON"),
                Arguments.of("header invalid UTF-8", file(8, new byte[] {'{', '"', (byte) 0xC3, 0x28, '"', ':', '1', '}'}, 0),
                        null, "not valid JSON"),
                Arguments.of("header not an object", file("[1,2]", 0), null, "not a JSON object"),
                Arguments.of("content after the object", file("{} {}", 0), null, "content after its JSON object"),
                Arguments.of("unknown dtype", file("{\"w\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                        "w", "unknown dtype 'F17'"),
                Arguments.of("negative shape", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4),
                        "w", "shape has a negative entry: -1"),
                Arguments.of("non-integer shape", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4),
                        "w", "shape has a non-integer entry"),
                Arguments.of("byte length not shape x dtype", file("{" + f32("w", 2, 0, 4) + "}", 4), "w",
                        "byte length 4 does not match shape [2] of F32 (8 bytes)"),
                Arguments.of("shape overflows", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,4]}}", 4),
                        "w", "no valid byte length"),
                Arguments.of("offsets out of order", file("{" + f32("w", 1, 4, 0) + "}", 4), "w",
                        "data_offsets out of order: begin 4 > end 0"),
                Arguments.of("offsets overlap", file("{" + f32("a", 2, 0, 8) + "," + f32("b", 2, 4, 12) + "}", 12), "b",
                        "overlap tensor 'a'"),
                Arguments.of("offsets leave a hole", file("{" + f32("a", 1, 0, 4) + "," + f32("b", 1, 8, 12) + "}", 12), "b",
                        "leave a hole: bytes [4, 8)"),
                Arguments.of("offsets do not cover the data", file("{" + f32("a", 1, 0, 4) + "}", 8), null,
                        "tensors cover 4 bytes but the data section has 8"),
                Arguments.of("offsets past the end of the file", file("{" + f32("a", 2, 0, 8) + "}", 4), "a",
                        "past the end of the file"),
                Arguments.of("duplicate names", file("{" + f32("a", 1, 0, 4) + "," + f32("a", 1, 4, 8) + "}", 8), "a",
                        "duplicate name"),
                Arguments.of("metadata value not a string", file("{\"__metadata__\":{\"format\":1}}", 0), null,
                        "__metadata__ value of 'format' is not a string"),
                Arguments.of("metadata not an object", file("{\"__metadata__\":[\"pt\"]}", 0), null,
                        "__metadata__ is not an object"),
                Arguments.of("entry without data_offsets", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), "w",
                        "lacks data_offsets"),
                Arguments.of("data_offsets of three", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4),
                        "w", "data_offsets has 3 entries"),
                Arguments.of("entry not an object", file("{\"w\":[1]}", 0), "w", "entry is not an object"),
                Arguments.of("sub-byte dtype off a byte boundary", file("{\"w\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2),
                        "w", "do not end on a byte boundary"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("malformedFiles")
    void rejectsAMalformedFileNamingFileTensorAndRule(String rule, byte[] bytes, String tensor, String phrase,
                                                      @TempDir Path dir) throws IOException {
        Path path = dir.resolve("bad.safetensors");
        Files.write(path, bytes);
        SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> SafetensorsFile.open(path));
        assertTrue(e.getMessage().startsWith(path.toString() + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(phrase), rule + ": " + e.getMessage());
        assertEquals(tensor, e.tensor(), rule + ": " + e.getMessage());
        if (tensor != null) {
            assertTrue(e.getMessage().contains("tensor '" + tensor + "'"), e.getMessage());
        }
    }

    @Test
    void acceptsAValidFileBuiltTheSameWay(@TempDir Path dir) throws IOException {
        Path path = dir.resolve("good.safetensors");
        Files.write(path, file("{\"__metadata__\":{\"format\":\"pt\"}," + f32("a", 1, 0, 4) + "," + f32("b", 2, 4, 12)
                + ",\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[12,12]}}", 12));
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            assertEquals(List.of("a", "b", "e"), file.tensors().stream().map(TensorInfo::name).toList());
        }
    }

    /** Parses a whole file image the way {@link SafetensorsFile#open} does, without touching the disk. */
    private static SafetensorsHeader parseImage(byte[] image) throws SafetensorsFormatException {
        long size = SafetensorsHeaderParser.headerSize("mutant", Arrays.copyOf(image, Math.min(8, image.length)), image.length);
        return SafetensorsHeaderParser.parse("mutant", Arrays.copyOfRange(image, 8, (int) (8 + size)), image.length);
    }

    @Test
    void tenThousandMutatedHeadersFailOnlyWithTheFormatError(@TempDir Path dir) throws IOException {
        byte[] seed;
        try (InputStream in = getClass().getResourceAsStream("/reference/mixed-dtypes.safetensors")) {
            seed = in.readAllBytes();
        }
        parseImage(seed);
        int headerEnd = 8 + (int) ByteBuffer.wrap(seed, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        Random random = new Random(20261122);
        int[] outcomes = new int[2];
        assertTimeoutPreemptively(Duration.ofSeconds(120), () -> {
            for (int i = 0; i < 10_000; i++) {
                byte[] mutant = mutate(seed, headerEnd, random);
                try {
                    SafetensorsHeader header = parseImage(mutant);
                    assertEquals(mutant.length, header.fileSize(), "an accepted header covers the whole file");
                    outcomes[0]++;
                } catch (SafetensorsFormatException e) {
                    assertTrue(e.getMessage().startsWith("mutant: "), e.getMessage());
                    outcomes[1]++;
                } catch (Throwable t) {
                    fail("mutation " + i + " raised " + t, t);
                }
                if (i % 500 == 0) {
                    Path path = dir.resolve("m" + i + ".safetensors");
                    Files.write(path, mutant);
                    try (SafetensorsFile file = SafetensorsFile.open(path)) {
                        file.tensors().forEach(file::tensor);
                    } catch (SafetensorsFormatException expected) {
                        // rejected through the file path too
                    }
                }
            }
        });
        assertEquals(10_000, outcomes[0] + outcomes[1]);
        assertTrue(outcomes[1] > 5_000, "most mutations break the header: " + outcomes[1] + " rejected");
    }

    private static final String[] TOKENS = {"{", "}", "[", "]", ",", ":", "\"", "-1", "0", "99999999999999999999",
            "1e3", "null", "true", "\"F32\"", "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"", "\\u0000"};

    private static byte[] mutate(byte[] seed, int headerEnd, Random random) {
        byte[] bytes = seed.clone();
        int kind = random.nextInt(7);
        int at = 8 + random.nextInt(headerEnd - 8);
        switch (kind) {
            case 0 -> bytes[at] = (byte) random.nextInt(256);
            case 1 -> { // replace a digit with another: shifts offsets and shapes
                for (int tries = 0; tries < 50; tries++) {
                    int p = 8 + random.nextInt(headerEnd - 8);
                    if (Character.isDigit(bytes[p])) {
                        bytes[p] = (byte) ('0' + random.nextInt(10));
                        break;
                    }
                }
            }
            case 2 -> { // change the length prefix
                long length = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
                long[] choices = {length + random.nextInt(17) - 8, random.nextLong(), 0, bytes.length, -1, 100_000_001L};
                ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(choices[random.nextInt(choices.length)]);
            }
            case 3 -> bytes = Arrays.copyOf(bytes, random.nextInt(bytes.length)); // truncate
            case 4 -> { // overwrite with a JSON token, keeping the length
                byte[] token = TOKENS[random.nextInt(TOKENS.length)].getBytes(StandardCharsets.UTF_8);
                System.arraycopy(token, 0, bytes, at, Math.min(token.length, headerEnd - at));
            }
            case 5 -> { // several random bytes at once
                for (int k = 0; k < 1 + random.nextInt(8); k++) {
                    bytes[8 + random.nextInt(headerEnd - 8)] = (byte) random.nextInt(256);
                }
            }
            default -> { // swap two header bytes
                int other = 8 + random.nextInt(headerEnd - 8);
                byte b = bytes[at];
                bytes[at] = bytes[other];
                bytes[other] = b;
            }
        }
        return bytes;
    }
}
