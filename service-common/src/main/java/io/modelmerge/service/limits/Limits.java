package io.modelmerge.service.limits;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The size limits of what requests may store, checked at the edge of both services before anything is stored
 * or run, so that no request makes a listing huge or a job fail late. Every refusal names the field, the value's
 * size and the limit (as a {@link LimitException}, which each service maps to 400 / INVALID_ARGUMENT).
 */
public final class Limits {
    /** Characters of a model's, a version's or a job output's description. */
    public static final int DESCRIPTION_CHARS = 8192;
    /** Tags on one model, version or job output. */
    public static final int TAGS = 64;
    public static final int TAG_KEY_CHARS = 128;
    public static final int TAG_VALUE_CHARS = 256;
    /** Bytes (UTF-8) of a merge recipe. */
    public static final int RECIPE_BYTES = 64 << 10;
    /** Distinct inputs one recipe may name (models, bases, companion files such as Fishers). */
    public static final int RECIPE_INPUTS = 128;
    /** An idempotency key: 1 to 128 of {@code A-Z a-z 0-9 . _ : -}. */
    public static final Pattern IDEMPOTENCY_KEY = Pattern.compile("[A-Za-z0-9._:-]{1,128}");
    /** The smallest memory budget a merge runs in (the engine's own minimum). */
    public static final long MIN_MEMORY_BYTES = 16L << 20;
    /** The smallest output shard. */
    public static final long MIN_SHARD_BYTES = 1L << 20;
    /** Bytes of a REST request body. */
    public static final int REQUEST_BODY_BYTES = 1 << 20;
    /** Serialized bytes of one page of a job listing (at least one job is always returned). */
    public static final int LIST_PAGE_BYTES = 1 << 20;

    private Limits() {
    }

    public static void description(String field, String value) {
        text(field, value);
        if (value != null && value.length() > DESCRIPTION_CHARS) {
            throw new LimitException(field, "is " + value.length() + " characters, over the limit of "
                    + DESCRIPTION_CHARS);
        }
    }

    /** Tag keys are 1 to 128 characters, values at most 256, at most 64 tags; no NUL anywhere. */
    public static Map<String, String> tags(String field, Map<String, String> tags) {
        if (tags.size() > TAGS) {
            throw new LimitException(field, "has " + tags.size() + " tags, over the limit of " + TAGS);
        }
        tags.forEach((key, value) -> {
            if (key == null || key.isBlank() || key.length() > TAG_KEY_CHARS) {
                throw new LimitException(field, "tag key '" + abbreviated(key) + "' must be 1 to " + TAG_KEY_CHARS
                        + " characters");
            }
            text(field, key);
            if (value == null || value.length() > TAG_VALUE_CHARS) {
                throw new LimitException(field + "." + key, "tag value must be a string of at most "
                        + TAG_VALUE_CHARS + " characters" + (value == null ? "" : ", got " + value.length()));
            }
            text(field + "." + key, value);
        });
        return tags;
    }

    public static void recipe(String field, String yaml) {
        text(field, yaml);
        int bytes = yaml.getBytes(StandardCharsets.UTF_8).length;
        if (bytes > RECIPE_BYTES) {
            throw new LimitException(field, "is " + bytes + " bytes, over the limit of " + RECIPE_BYTES);
        }
    }

    public static void idempotencyKey(String field, String key) {
        if (!IDEMPOTENCY_KEY.matcher(key).matches()) {
            throw new LimitException(field, "must be 1 to 128 characters of A-Z a-z 0-9 . _ : - (got "
                    + key.length() + " characters" + (key.length() <= 128 ? ": '" + printable(key) + "'" : "") + ")");
        }
    }

    /** No NUL: PostgreSQL cannot store it in text, and no model name or description needs one. */
    public static void text(String field, String value) {
        if (value != null && value.indexOf('\0') >= 0) {
            throw new LimitException(field, "contains a NUL character (U+0000) at " + value.indexOf('\0'));
        }
    }

    private static String abbreviated(String value) {
        return value == null ? "null" : value.length() <= 40 ? printable(value) : printable(value.substring(0, 40)) + "...";
    }

    /** {@code value} with control characters shown as {@code ?}, fit to quote in a message. */
    public static String printable(String value) {
        return value.replaceAll("\\p{Cntrl}", "?");
    }
}
