package io.modelmerge.engine.method;

import java.util.List;
import java.util.Map;

/**
 * The parameters of one tensor's merge, resolved from the recipe (gradients interpolated, filters applied,
 * defaults filled in) and checked against the method's definitions.
 *
 * @param tensor   the tensor's name
 * @param elements its element count
 * @param perModel one map per merged model (not the base), in recipe order
 * @param global   the merge-wide parameters
 * @param seed     this tensor's random seed, derived from the job's seed and the tensor's name
 * @param modelThresholds per model, the |δ| threshold chosen over the whole model ({@code topk_scope: model});
 *                 empty when each tensor chooses its own
 */
public record TensorParameters(String tensor, long elements, List<Map<String, Object>> perModel,
                               Map<String, Object> global, long seed, List<Float> modelThresholds) {

    public TensorParameters {
        perModel = perModel.stream().map(Map::copyOf).toList();
        global = Map.copyOf(global);
        modelThresholds = List.copyOf(modelThresholds);
    }

    public TensorParameters(String tensor, long elements, List<Map<String, Object>> perModel, Map<String, Object> global,
                            long seed) {
        this(tensor, elements, perModel, global, seed, List.of());
    }

    /** These parameters with thresholds chosen over the whole model. */
    public TensorParameters withModelThresholds(List<Float> thresholds) {
        return new TensorParameters(tensor, elements, perModel, global, seed, thresholds);
    }

    /** Whether magnitude top-k is to be chosen over the whole model rather than per tensor. */
    public boolean modelWideTopK() {
        return "model".equals(global.get("topk_scope"));
    }

    public int models() {
        return perModel.size();
    }

    public double modelNumber(int model, String name) {
        return ((Number) perModel.get(model).get(name)).doubleValue();
    }

    public double number(String name) {
        return ((Number) global.get(name)).doubleValue();
    }

    public boolean flag(String name) {
        return (Boolean) global.get(name);
    }

    public String choice(String name) {
        return (String) global.get(name);
    }
}
