package io.modelmerge.registry.service;

import java.util.List;
import java.util.Map;

/**
 * {@code POST /models/{ns}/{name}/versions}: where the files are, and what the caller knows that the files do not
 * say. The registry reads the headers and checksums the files itself.
 *
 * @param format         checkpoint, peft_adapter, delta or fisher; by default what the files are
 * @param expectedSha256 file path → sha256 the caller expects; any difference refuses the registration
 * @param createModel    create the model with this description and tags if it does not exist yet, in the same
 *                       transaction as the version (so a model never exists without one); absent: a missing model
 *                       is a 404
 */
public record RegisterVersionRequest(String storageUri, String format, List<ParentRequest> parents, String recipe,
                                     Map<String, Object> parameters, Map<String, Double> metrics,
                                     Map<String, String> tags, String description, Map<String, String> expectedSha256,
                                     NewModel createModel) {

    /** The model to create along with its first version. */
    public record NewModel(String description, Map<String, String> tags) {
    }

    /** A parent by ref ({@code ns/name@3}, {@code ns/name@prod}); it is pinned to a version number. */
    public record ParentRequest(String ref, String relation) {
    }
}
