package io.modelmerge.cli;

import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.checkpoint.AdapterConfig;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.checkpoint.InvalidCheckpointException;
import io.modelmerge.storage.checkpoint.LoraModule;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.TensorInfo;
import java.io.PrintWriter;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** What {@code mergectl inspect} reports about one checkpoint, as text or as JSON. */
record CheckpointSummary(Checkpoint checkpoint, List<TensorInfo> tensors, Map<DType, Long> dtypes, long parameters,
                         long tensorBytes, long fileBytes, Optional<List<LoraModule>> loraModules) {

    static CheckpointSummary of(Checkpoint checkpoint) throws InvalidCheckpointException {
        long fileBytes = checkpoint.files().stream().mapToLong(f -> f.blob().size()).sum();
        Optional<List<LoraModule>> modules = checkpoint.adapterConfig().isPresent()
                ? Optional.of(checkpoint.loraModules()) : Optional.empty();
        return new CheckpointSummary(checkpoint, checkpoint.tensors(), checkpoint.dtypeCounts(),
                checkpoint.parameterCount(), checkpoint.tensorBytes(), fileBytes, modules);
    }

    Map<String, Object> toJson(boolean withTensors) {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("location", checkpoint.location());
        json.put("format", checkpoint.format().name().toLowerCase());
        json.put("files", checkpoint.files().stream().map(f -> {
            Map<String, Object> file = new LinkedHashMap<>();
            file.put("name", f.blob().fileName());
            file.put("size", f.blob().size());
            return file;
        }).toList());
        json.put("tensor_count", tensors.size());
        json.put("parameter_count", parameters);
        json.put("tensor_bytes", tensorBytes);
        json.put("file_bytes", fileBytes);
        Map<String, Long> dtypeCounts = new LinkedHashMap<>();
        dtypes.forEach((d, n) -> dtypeCounts.put(d.name(), n));
        json.put("dtypes", dtypeCounts);
        json.put("metadata", checkpoint.metadata());
        json.put("tag_along_files", checkpoint.tagAlongFiles().stream().map(BlobInfo::fileName).toList());
        checkpoint.adapterConfig().ifPresent(config -> json.put("adapter", adapterJson(config)));
        if (withTensors) {
            json.put("tensors", tensors.stream().map(t -> {
                Map<String, Object> tensor = new LinkedHashMap<>();
                tensor.put("name", t.name());
                tensor.put("dtype", t.dtype().name());
                tensor.put("shape", t.shape());
                tensor.put("file", checkpoint.fileOf(t.name()).orElseThrow().blob().fileName());
                return tensor;
            }).toList());
        }
        return json;
    }

    private Map<String, Object> adapterJson(AdapterConfig config) {
        Map<String, Object> adapter = new LinkedHashMap<>();
        adapter.put("peft_type", config.peftType());
        adapter.put("base_model", config.baseModel().orElse(null));
        adapter.put("task_type", config.taskType().orElse(null));
        adapter.put("r", config.r());
        adapter.put("lora_alpha", config.loraAlpha());
        adapter.put("target_modules", config.targetModules());
        adapter.put("fan_in_fan_out", config.fanInFanOut());
        adapter.put("use_rslora", config.useRslora());
        adapter.put("rank_pattern", config.rankPattern());
        adapter.put("alpha_pattern", config.alphaPattern());
        adapter.put("modules_to_save", config.modulesToSave());
        adapter.put("lora_module_count", loraModules.orElseThrow().size());
        return adapter;
    }

    void printText(PrintWriter out, boolean withTensors) {
        out.printf("%s%n", checkpoint.location());
        out.printf("  format:      %s%n", checkpoint.format().name().toLowerCase());
        out.printf("  files:       %d (%,d bytes)%n", checkpoint.files().size(), fileBytes);
        out.printf("  tensors:     %,d%n", tensors.size());
        out.printf("  parameters:  %,d%n", parameters);
        out.printf("  tensor data: %,d bytes%n", tensorBytes);
        StringBuilder dtypeText = new StringBuilder();
        dtypes.forEach((d, n) -> dtypeText.append(dtypeText.isEmpty() ? "" : ", ").append(d).append(" x").append(n));
        out.printf("  dtypes:      %s%n", dtypeText.isEmpty() ? "-" : dtypeText);
        out.printf("  metadata:    %s%n", checkpoint.metadata().isEmpty() ? "-" : checkpoint.metadata());
        if (!checkpoint.tagAlongFiles().isEmpty()) {
            out.printf("  also:        %s%n", checkpoint.tagAlongFiles().stream().map(BlobInfo::fileName).toList());
        }
        checkpoint.adapterConfig().ifPresent(c -> out.printf(
                "  adapter:     LoRA r=%d alpha=%s targets=%s fan_in_fan_out=%s rslora=%s, %d modules, base %s%n",
                c.r(), c.loraAlpha(), c.targetModules(), c.fanInFanOut(), c.useRslora(),
                loraModules.orElseThrow().size(), c.baseModel().orElse("?")));
        if (withTensors && !tensors.isEmpty()) {
            int width = tensors.stream().mapToInt(t -> t.name().length()).max().orElse(10);
            out.println();
            for (TensorInfo t : tensors) {
                out.printf("  %-" + width + "s  %-5s %s%n", t.name(), t.dtype(), Arrays.toString(t.shape()));
            }
        }
    }
}
