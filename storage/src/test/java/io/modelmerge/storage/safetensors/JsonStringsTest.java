package io.modelmerge.storage.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The expected strings are what Python's json.dumps printed for the same input, with and without ensure_ascii. */
class JsonStringsTest {
    private static final String TRICKY = "é\u001f\u007f😀\"\\\n";

    @Test
    void asciiOnlyEscapesAsPythonsEnsureAsciiDoes() {
        assertEquals("\"\\u00e9\\u001f\\u007f\\ud83d\\ude00\\\"\\\\\\n\"",
                JsonStrings.append(new StringBuilder(), TRICKY, true).toString());
    }

    @Test
    void otherwiseOnlyQuotesBackslashesAndControlCharactersAreEscaped() {
        assertEquals("\"é\\u001f\u007f😀\\\"\\\\\\n\"", JsonStrings.quote(TRICKY));
    }
}
