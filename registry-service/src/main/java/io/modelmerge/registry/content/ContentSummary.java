package io.modelmerge.registry.content;

import java.util.List;
import java.util.Map;

/**
 * What the headers say about a version: counts, dtypes (parameters per dtype), the safetensors metadata, and the
 * fields of config.json or adapter_config.json a user looks for first.
 *
 * @param architecture {@code architectures[0]} of config.json, else its {@code model_type}, else null
 * @param config       selected config.json fields, when the version has one
 * @param adapter      base model, rank, alpha and targets of a PEFT adapter
 * @param ignoredFiles files of the directory that no checkpoint layout defines: not part of the version
 * @param delta        a stored delta's operation, parameters, base and fine-tune digests, compression ratio and
 *                     worst reconstruction error, from its delta.json
 */
public record ContentSummary(int tensorCount, long parameterCount, long tensorBytes, Map<String, Long> dtypes,
                             Map<String, String> metadata, String architecture, Map<String, Object> config,
                             Map<String, Object> adapter, List<String> ignoredFiles, Map<String, Object> delta) {
    public ContentSummary {
        ignoredFiles = ignoredFiles == null ? List.of() : List.copyOf(ignoredFiles);
    }
}
