package io.modelmerge.storage.safetensors;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * Writes a header exactly as the reference implementation does (serde_json, compact): {@code __metadata__}
 * first, then the tensors in data order, each as {@code {"dtype":..,"shape":[..],"data_offsets":[b,e]}};
 * strings escaped as serde_json escapes them; spaces appended up to a multiple of 8 bytes.
 */
final class HeaderJson {

    private HeaderJson() {
    }

    static byte[] write(List<TensorInfo> tensors, Map<String, String> metadata) {
        StringBuilder json = new StringBuilder(64 + 96 * tensors.size());
        json.append('{');
        boolean first = true;
        if (!metadata.isEmpty()) {
            json.append("\"__metadata__\":{");
            boolean firstEntry = true;
            for (Map.Entry<String, String> entry : metadata.entrySet()) {
                if (!firstEntry) {
                    json.append(',');
                }
                JsonStrings.append(json, entry.getKey(), false).append(':');
                JsonStrings.append(json, entry.getValue(), false);
                firstEntry = false;
            }
            json.append('}');
            first = false;
        }
        for (TensorInfo t : tensors) {
            if (!first) {
                json.append(',');
            }
            first = false;
            JsonStrings.append(json, t.name(), false).append(":{\"dtype\":\"").append(t.dtype().name())
                    .append("\",\"shape\":[");
            long[] shape = t.shape();
            for (int i = 0; i < shape.length; i++) {
                if (i > 0) {
                    json.append(',');
                }
                json.append(shape[i]);
            }
            json.append("],\"data_offsets\":[").append(t.begin()).append(',').append(t.end()).append("]}");
        }
        json.append('}');
        byte[] bytes = json.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (bytes.length + 7) / 8 * 8;
        byte[] out = java.util.Arrays.copyOf(bytes, padded);
        java.util.Arrays.fill(out, bytes.length, padded, (byte) ' ');
        return out;
    }
}
