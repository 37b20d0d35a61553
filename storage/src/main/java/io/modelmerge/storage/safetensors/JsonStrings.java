package io.modelmerge.storage.safetensors;

/**
 * JSON string literals, written the way the reference writers write them so our files match theirs byte for
 * byte: serde_json (safetensors headers) escapes only quotes, backslashes and control characters; Python's
 * json.dumps with ensure_ascii (HF index files) escapes everything outside printable ASCII too. A JSON string is
 * also a valid YAML double-quoted scalar.
 */
public final class JsonStrings {
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private JsonStrings() {
    }

    /** {@code s} quoted, non-ASCII characters kept as they are (serde_json). */
    public static String quote(String s) {
        return append(new StringBuilder(), s, false).toString();
    }

    /**
     * Appends {@code s} quoted to {@code out}; with {@code asciiOnly}, every character outside space to tilde
     * as a {@code \}{@code uXXXX} escape (Python's ensure_ascii).
     */
    public static StringBuilder append(StringBuilder out, String s, boolean asciiOnly) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20 || (asciiOnly && c > 0x7e)) {
                        out.append("\\u").append(HEX[c >> 12]).append(HEX[(c >> 8) & 0xF]).append(HEX[(c >> 4) & 0xF])
                                .append(HEX[c & 0xF]);
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"');
    }
}
