package io.modelmerge.registry;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * Small safetensors checkpoints written byte by byte from the format's definition (not with our writer), so the
 * registry's reading is checked against an independent encoding.
 */
final class TinyCheckpoints {
    private TinyCheckpoints() {
    }

    /** {@code model.safetensors} in {@code dir} with F32 tensors of the given lengths, values from {@code seed}. */
    static Path write(Path dir, long seed, Map<String, Integer> tensors) throws IOException {
        Files.createDirectories(dir);
        StringBuilder header = new StringBuilder("{");
        long offset = 0;
        for (var t : tensors.entrySet()) {
            long end = offset + 4L * t.getValue();
            header.append(header.length() > 1 ? "," : "").append('"').append(t.getKey())
                    .append("\":{\"dtype\":\"F32\",\"shape\":[").append(t.getValue()).append("],\"data_offsets\":[")
                    .append(offset).append(',').append(end).append("]}");
            offset = end;
        }
        header.append('}');
        while ((8 + header.length()) % 8 != 0) {
            header.append(' ');
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        ByteBuffer file = ByteBuffer.allocate(8 + json.length + (int) offset).order(ByteOrder.LITTLE_ENDIAN);
        file.putLong(json.length).put(json);
        Random random = new Random(seed);
        while (file.hasRemaining()) {
            file.putFloat(random.nextFloat());
        }
        Path path = dir.resolve("model.safetensors");
        Files.write(path, file.array());
        return path;
    }

    /** One tensor {@code w} of 16 floats. */
    static Path write(Path dir, long seed) throws IOException {
        Map<String, Integer> tensors = new LinkedHashMap<>();
        tensors.put("w", 16);
        return write(dir, seed, tensors);
    }
}
