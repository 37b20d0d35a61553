package io.modelmerge.engine.method;

import java.util.List;
import java.util.Map;

/**
 * The parameters of one tensor's merge, resolved from the recipe (gradients interpolated, filters applied,
 * defaults filled in) and checked against the method's definitions.
 *
 * @param tensor   the tensor's name
 * @param elements its element count
 * @param columns  its row length (the last dimension; the element count for a 1-D tensor), for methods that
 *                 work row by row
 * @param perModel one map per merged model (not the base), in recipe order
 * @param global   the merge-wide parameters
 * @param seed     this tensor's random seed, derived from the job's seed and the tensor's name
 * @param modelThresholds per model, the |δ| threshold chosen over the whole model ({@code topk_scope: model});
 *                 empty when each tensor chooses its own
 */
public record TensorParameters(String tensor, long elements, long columns, List<Map<String, Object>> perModel,
                               Map<String, Object> global, long seed, List<Float> modelThresholds) {

    public TensorParameters {
        perModel = perModel.stream().map(Map::copyOf).toList();
        global = Map.copyOf(global);
        modelThresholds = List.copyOf(modelThresholds);
    }

    public TensorParameters(String tensor, long elements, long columns, List<Map<String, Object>> perModel,
                            Map<String, Object> global, long seed) {
        this(tensor, elements, columns, perModel, global, seed, List.of());
    }

    /** The parameters of a 1-D tensor (one row). */
    public TensorParameters(String tensor, long elements, List<Map<String, Object>> perModel, Map<String, Object> global,
                            long seed) {
        this(tensor, elements, elements, perModel, global, seed, List.of());
    }

    /** These parameters with thresholds chosen over the whole model. */
    public TensorParameters withModelThresholds(List<Float> thresholds) {
        return new TensorParameters(tensor, elements, columns, perModel, global, seed, thresholds);
    }

    /** These parameters with {@code name} set to {@code values[m]} for each model m (values computed by the run). */
    public TensorParameters withModelNumbers(String name, double[] values) {
        List<Map<String, Object>> models = new java.util.ArrayList<>();
        for (int m = 0; m < perModel.size(); m++) {
            Map<String, Object> own = new java.util.HashMap<>(perModel.get(m));
            own.put(name, values[m]);
            models.add(own);
        }
        return new TensorParameters(tensor, elements, columns, models, global, seed, modelThresholds);
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

    /** The variant {@code name} names, given as a constant or by any of its spellings. */
    public <E extends Enum<E> & Variant> E variant(String name, Class<E> type) {
        Object value = global.get(name);
        if (type.isInstance(value)) {
            return type.cast(value);
        }
        return Variant.parse(type, String.valueOf(value)).orElseThrow(() -> new IllegalArgumentException(
                "parameter '" + name + "' is '" + value + "', not a " + type.getSimpleName()));
    }

    /**
     * Adds {@code note} to the merge's notes ({@link MergeMethod#NOTES}), from planning or from any worker; a
     * no-op for parameters made without them (tests that call a method directly).
     */
    @SuppressWarnings("unchecked")
    public void note(String note) {
        if (global.get(MergeMethod.NOTES) instanceof List<?> notes) {
            ((List<String>) notes).add(note);
        }
    }

    public double[] modelNumbers(String name) {
        double[] values = new double[models()];
        for (int m = 0; m < values.length; m++) {
            values[m] = modelNumber(m, name);
        }
        return values;
    }
}
