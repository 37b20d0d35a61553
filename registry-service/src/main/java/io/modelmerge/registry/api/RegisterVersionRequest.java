package io.modelmerge.registry.api;

import java.util.List;
import java.util.Map;

/**
 * {@code POST /models/{ns}/{name}/versions}: where the files are, and what the caller knows that the files do not
 * say. The registry reads the headers and checksums the files itself.
 *
 * @param format         checkpoint, peft_adapter, delta or fisher; by default what the files are
 * @param expectedSha256 file path → sha256 the caller expects; any difference refuses the registration
 */
public record RegisterVersionRequest(String storageUri, String format, List<ParentRequest> parents, String recipe,
                                     Map<String, Object> parameters, Map<String, Double> metrics,
                                     Map<String, String> tags, String description, Map<String, String> expectedSha256) {

    /** A parent by ref ({@code ns/name@3}, {@code ns/name@prod}); it is pinned to a version number. */
    public record ParentRequest(String ref, String relation) {
    }
}
