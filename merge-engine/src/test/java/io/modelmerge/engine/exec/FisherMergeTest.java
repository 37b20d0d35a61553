package io.modelmerge.engine.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two logistic-regression classifiers fine-tuned from one init on two synthetic tasks, with their diagonal
 * Fishers in closed form, written as checkpoints and Fisher files and merged by the executor: Fisher averaging
 * keeps both tasks where plain averaging blurs them. The same models are the sanity check of every method.
 *
 * <p>Task A's labels depend on features 0..9, which vary (σ = 1) in its data while features 10..19 barely do
 * (σ = 0.1); task B is the mirror image. For p = σ(w·x + b), the Fisher of the model's own predictive
 * distribution is diagonal-approximated as F_j = E[p(1 − p)·x_j²] (x_j = 1 for the bias), the expectation over the
 * task's training inputs.
 */
class FisherMergeTest {
    private static final int FEATURES = 20;
    private static final List<TensorSpec> SPECS = List.of(
            new TensorSpec("classifier.weight", DType.F32, new long[] {1, FEATURES}),
            new TensorSpec("classifier.bias", DType.F32, new long[] {1}));

    @TempDir
    static Path dir;
    static Task taskA;
    static Task taskB;
    static double[] init;
    static double[] tunedA;
    static double[] tunedB;

    /** One task: training and validation inputs and labels. */
    record Task(double[][] train, int[] trainLabels, double[][] validation, int[] validationLabels) {
        static Task of(Random random, int signalFrom, double[] direction) {
            double[][] train = inputs(random, 2000, signalFrom);
            double[][] validation = inputs(random, 1000, signalFrom);
            return new Task(train, labels(train, signalFrom, direction), validation, labels(validation, signalFrom, direction));
        }

        private static double[][] inputs(Random random, int count, int signalFrom) {
            double[][] x = new double[count][FEATURES];
            for (double[] row : x) {
                for (int j = 0; j < FEATURES; j++) {
                    boolean signal = j >= signalFrom && j < signalFrom + 10;
                    row[j] = random.nextGaussian() * (signal ? 1 : 0.1);
                }
            }
            return x;
        }

        private static int[] labels(double[][] x, int signalFrom, double[] direction) {
            int[] y = new int[x.length];
            for (int i = 0; i < x.length; i++) {
                double s = 0;
                for (int j = 0; j < 10; j++) {
                    s += direction[j] * x[i][signalFrom + j];
                }
                y[i] = s > 0 ? 1 : 0;
            }
            return y;
        }
    }

    /** Parameters are [w₀..w₁₉, b]. */
    private static double logit(double[] theta, double[] x) {
        double s = theta[FEATURES];
        for (int j = 0; j < FEATURES; j++) {
            s += theta[j] * x[j];
        }
        return s;
    }

    private static double[] train(double[] start, Task task) {
        double[] theta = start.clone();
        for (int step = 0; step < 300; step++) {
            double[] gradient = new double[FEATURES + 1];
            for (int i = 0; i < task.train().length; i++) {
                double error = 1 / (1 + Math.exp(-logit(theta, task.train()[i]))) - task.trainLabels()[i];
                for (int j = 0; j < FEATURES; j++) {
                    gradient[j] += error * task.train()[i][j];
                }
                gradient[FEATURES] += error;
            }
            for (int j = 0; j <= FEATURES; j++) {
                theta[j] -= 0.5 * gradient[j] / task.train().length;
            }
        }
        return theta;
    }

    static double[] fisher(double[] theta, Task task) {
        double[] f = new double[FEATURES + 1];
        for (double[] x : task.train()) {
            double p = 1 / (1 + Math.exp(-logit(theta, x)));
            for (int j = 0; j < FEATURES; j++) {
                f[j] += p * (1 - p) * x[j] * x[j] / task.train().length;
            }
            f[FEATURES] += p * (1 - p) / task.train().length;
        }
        return f;
    }

    static double accuracy(double[] theta, Task task) {
        int right = 0;
        for (int i = 0; i < task.validation().length; i++) {
            right += (logit(theta, task.validation()[i]) > 0 ? 1 : 0) == task.validationLabels()[i] ? 1 : 0;
        }
        return right / (double) task.validation().length;
    }

    /** Accuracy over the joint validation set (both tasks' validation examples, equally many). */
    static double joint(double[] theta) {
        return (accuracy(theta, taskA) + accuracy(theta, taskB)) / 2;
    }

    static Path write(String name, double[] values) throws Exception {
        return SyntheticCheckpoints.write(dir.resolve(name), SPECS,
                (tensor, i) -> tensor.equals("classifier.bias") ? values[FEATURES] : values[(int) i]);
    }

    @BeforeAll
    static void trainTheTwoTasks() throws Exception {
        Random random = new Random(2024);
        double[] directionA = new double[10];
        double[] directionB = new double[10];
        for (int j = 0; j < 10; j++) {
            directionA[j] = random.nextGaussian();
            directionB[j] = random.nextGaussian();
        }
        taskA = Task.of(random, 0, directionA);
        taskB = Task.of(random, 10, directionB);
        init = new double[FEATURES + 1];
        for (int j = 0; j < FEATURES; j++) {
            init[j] = random.nextGaussian();
        }
        tunedA = train(init, taskA);
        tunedB = train(init, taskB);
        write("init", init);
        write("a", tunedA);
        write("b", tunedB);
        write("a-fisher", fisher(tunedA, taskA));
        write("b-fisher", fisher(tunedB, taskB));
    }

    static double[] merge(String yaml) throws Exception {
        Path out = dir.resolve("out-" + Integer.toHexString(yaml.hashCode()));
        MergeResult result = new MergeExecutor(MergeOptions.defaults().withThreads(2).withSeed(1), p -> { },
                new AtomicBoolean()).run(RecipeParser.parse(yaml.replace("$DIR", dir.toString())), out);
        assertTrue(result.tensors() == 2);
        try (SafetensorsFile file = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            double[] theta = new double[FEATURES + 1];
            float[] w = Floats.widen(file.tensor("classifier.weight"));
            for (int j = 0; j < FEATURES; j++) {
                theta[j] = w[j];
            }
            theta[FEATURES] = Floats.widen(file.tensor("classifier.bias"))[0];
            return theta;
        }
    }


    private static final String FISHER = """
            merge_method: fisher
            models:
              - model: $DIR/a
                parameters: {weight: 1.0, fisher: $DIR/a-fisher}
              - model: $DIR/b
                parameters: {weight: 1.0, fisher: $DIR/b-fisher}
            """;

    @Test
    void fisherAveragingBeatsPlainAveragingOnTheJointValidationSet() throws Exception {
        double[] linear = merge(FISHER.replace("merge_method: fisher", "merge_method: linear")
                .replace(", fisher: $DIR/a-fisher", "").replace(", fisher: $DIR/b-fisher", ""));
        double[] fisher = merge(FISHER);
        double[] mergelm = merge(FISHER + "parameters: {variant: mergelm}\n");
        System.out.printf("fisher quality: task A alone %.4f, task B alone %.4f; joint accuracy: linear %.4f,"
                        + " fisher %.4f, fisher (mergelm) %.4f%n", accuracy(tunedA, taskA), accuracy(tunedB, taskB),
                joint(linear), joint(fisher), joint(mergelm));
        assertTrue(joint(fisher) > joint(linear) + 0.03, "fisher " + joint(fisher) + " vs linear " + joint(linear));
        assertTrue(joint(mergelm) > joint(linear) + 0.03, "mergelm " + joint(mergelm) + " vs linear " + joint(linear));
    }

    @Test
    void equalFishersMakeFisherAveragingTheWeightedAverage() throws Exception {
        double[] linear = merge(FISHER.replace("merge_method: fisher", "merge_method: linear")
                .replace("weight: 1.0, fisher: $DIR/a-fisher", "weight: 3.0")
                .replace(", fisher: $DIR/b-fisher", ""));
        double[] equal = merge(FISHER.replace("b-fisher", "a-fisher").replace("weight: 1.0, fisher: $DIR/a-fisher}\n  - model: $DIR/b",
                "weight: 3.0, fisher: $DIR/a-fisher}\n  - model: $DIR/b"));
        for (int j = 0; j <= FEATURES; j++) {
            assertEquals(linear[j], equal[j], 1e-6 * Math.max(1, Math.abs(linear[j])), "parameter " + j);
        }
    }

    @Test
    void aTensorWithoutFisherFallsBackToTheWeightedAverageAndTheNotesSaySo() throws Exception {
        SyntheticCheckpoints.write(dir.resolve("partial-fisher"), SPECS.subList(0, 1), (tensor, i) -> fisher(tunedB, taskB)[(int) i]);
        String yaml = FISHER.replace("b-fisher", "partial-fisher").replace("$DIR", dir.toString());
        MergeResult result = new MergeExecutor(MergeOptions.defaults().withThreads(1), p -> { }, new AtomicBoolean())
                .run(RecipeParser.parse(yaml), dir.resolve("partial-out"));
        assertTrue(result.notes().stream().anyMatch(n -> n.contains("classifier.bias") && n.contains("weighted average")),
                result.notes().toString());
        try (SafetensorsFile file = SafetensorsFile.open(dir.resolve("partial-out/model.safetensors"))) {
            assertEquals((tunedA[FEATURES] + tunedB[FEATURES]) / 2, Floats.widen(file.tensor("classifier.bias"))[0], 1e-6);
        }
        RecipeException missing = assertThrows(RecipeException.class, () -> merge(FISHER.replace(", fisher: $DIR/b-fisher", "")));
        assertTrue(missing.getMessage().contains("needs parameter 'fisher'") && missing.getMessage().contains("/b"),
                missing.getMessage());
    }

    /** The same two fine-tunes through every method that takes them: each must still classify far above chance. */
    @Test
    void everyMethodKeepsTheTwoTasksAboveChance() throws Exception {
        Map<String, String> recipes = new LinkedHashMap<>();
        String models = "models:\n  - model: $DIR/a\n    parameters: {weight: 1.0, density: 0.7}\n"
                + "  - model: $DIR/b\n    parameters: {weight: 1.0, density: 0.7}\n";
        for (String method : List.of("task_arithmetic", "ties", "dare_ties", "dare_linear", "breadcrumbs", "breadcrumbs_ties",
                "della", "della_linear")) {
            recipes.put(method, "merge_method: " + method + "\nbase_model: $DIR/init\n" + models);
        }
        String plain = models.replace(", density: 0.7", "");
        for (String method : List.of("multislerp", "nuslerp")) {
            recipes.put(method, "merge_method: " + method + "\nbase_model: $DIR/init\n" + plain);
        }
        recipes.put("karcher", "merge_method: karcher\n" + plain);
        String bare = plain.replace("\n    parameters: {weight: 1.0}", "");
        for (String method : List.of("sce", "pcb")) {
            recipes.put(method, "merge_method: " + method + "\nbase_model: $DIR/init\n" + bare
                    + (method.equals("pcb") ? "parameters: {pcb_ratio: 0.5}\n" : ""));
        }
        StringBuilder table = new StringBuilder();
        for (var recipe : recipes.entrySet()) {
            double accuracy = joint(merge(recipe.getValue()));
            table.append(String.format(" %s %.4f", recipe.getKey(), accuracy));
            assertTrue(accuracy > 0.6, recipe.getKey() + " joint accuracy " + accuracy);
        }
        System.out.println("joint accuracy per method:" + table);
    }

    /**
     * Model Stock assumes fine-tunes of one task (their task vectors share a direction); for the two tasks above
     * they are nearly orthogonal and it rightly falls back towards the init. Two fine-tunes of task A on halves of
     * its data are its case: the merge classifies task A as well as either.
     */
    @Test
    void modelStockOfTwoFineTunesOfOneTaskKeepsThatTask() throws Exception {
        int half = taskA.train().length / 2;
        Task first = new Task(java.util.Arrays.copyOfRange(taskA.train(), 0, half),
                java.util.Arrays.copyOfRange(taskA.trainLabels(), 0, half), taskA.validation(), taskA.validationLabels());
        Task second = new Task(java.util.Arrays.copyOfRange(taskA.train(), half, 2 * half),
                java.util.Arrays.copyOfRange(taskA.trainLabels(), half, 2 * half), taskA.validation(), taskA.validationLabels());
        double[] one = train(init, first);
        double[] two = train(init, second);
        write("a1", one);
        write("a2", two);
        double[] stock = merge("merge_method: model_stock\nbase_model: $DIR/init\nmodels:\n  - model: $DIR/a1\n  - model: $DIR/a2\n");
        double worst = Math.min(accuracy(one, taskA), accuracy(two, taskA));
        System.out.printf("model_stock on two fine-tunes of task A: %.4f and %.4f alone, %.4f merged%n",
                accuracy(one, taskA), accuracy(two, taskA), accuracy(stock, taskA));
        assertTrue(accuracy(stock, taskA) >= worst - 0.01, "model_stock " + accuracy(stock, taskA) + " vs " + worst);
        double[] orthogonal = merge("merge_method: model_stock\nbase_model: $DIR/init\nmodels:\n  - model: $DIR/a\n  - model: $DIR/b\n");
        System.out.printf("model_stock on tasks A and B: joint %.4f (their task vectors are near orthogonal)%n", joint(orthogonal));
    }
}
