package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.storage.safetensors.SafetensorsFile;
import io.modelmerge.storage.safetensors.TensorInfo;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.CholeskyDecomposition;
import org.apache.commons.math3.linear.DecompositionSolver;
import org.apache.commons.math3.linear.NonPositiveDefiniteMatrixException;
import org.apache.commons.math3.linear.RealMatrix;

/**
 * {@code regmean} (Jin et al., "Dataless Knowledge Fusion by Merging Weights of Language Models", 2023): each
 * linear weight W [out, in] merged in closed form from the Gram matrices G = XᵀX of its inputs, the solution of
 * min Σᵢ ‖Xᵢ Wᵀ − Xᵢ Wᵢᵀ‖²: W = Σᵢ Wᵢ G̃ᵢ (Σᵢ G̃ᵢ)⁻¹ with G̃ = αG + (1 − α)·diag(G), α being
 * {@code reduce_non_diagonal_ratio} (FusionBench's name and default, 0.6). Each model names its {@code gram} input:
 * a directory with {@code model.safetensors}, or the file, holding [in, in] Grams; a Gram is found under the
 * weight's own name or under the name the file's metadata maps it to (one Gram per distinct input: q, k and v
 * share theirs). The sum is solved by Cholesky; where it is singular (an input feature never seen), a ridge of
 * 10⁻⁶ of its mean diagonal is added and the merge's notes say so (a merge split over shard tasks does not carry
 * that note yet). Other tensors, and weights without a Gram in every model's input (noted when planned), are
 * averaged. What it holds per weight, (2·models + 1)·in² doubles, counts against the memory budget.
 */
public final class RegMeanMerge implements MergeMethod {
    private static final String GRAM_FILE = "model.safetensors";
    private static final double RIDGE = 1e-6;

    @Override
    public String name() {
        return "regmean";
    }

    @Override
    public boolean requiresBase() {
        return false;
    }

    @Override
    public Optional<String> needsMoreThanCheckpoints() {
        return Optional.of("it reads each model's input Gram matrices (see RegMeanTest)");
    }

    @Override
    public List<ParameterDef> modelParameters() {
        return List.of(ParameterDef.text("gram"));
    }

    @Override
    public List<ParameterDef> globalParameters() {
        return List.of(ParameterDef.number("reduce_non_diagonal_ratio", 0.6)
                .within(new ParameterDef.Range(0, true, 1, true)));
    }

    @Override
    public List<String> inputParameters() {
        return List.of("gram");
    }

    /** A local path or {@code file:} URI (a pinned registry ref's storage), the directory's model file for a directory. */
    private static Path gramFile(String ref) {
        Path path = ref.startsWith("file:") ? Path.of(java.net.URI.create(ref)) : Path.of(ref);
        return Files.isDirectory(path) ? path.resolve(GRAM_FILE) : path;
    }

    private static String gramRef(TensorParameters p, int m) {
        return String.valueOf(p.perModel().get(m).getOrDefault("gram", ""));
    }

    /** The Gram of {@code tensor} in {@code file}: under the name the metadata maps it to, else its own. */
    private static Optional<TensorInfo> gram(SafetensorsFile file, String tensor) {
        String name = file.header().metadata().getOrDefault(tensor, tensor);
        return file.header().tensor(name);
    }

    private static boolean linear(TensorParameters p) {
        return ((Number) p.global().getOrDefault(TENSOR_RANK, 0)).intValue() == 2;
    }

    /**
     * For a linear weight with a Gram in every model's input: each model's reduced Gram and solve, and their
     * sum, as doubles [in, in] (reads the Gram files' headers).
     */
    @Override
    public long tensorStateBytes(TensorParameters p) {
        if (!linear(p)) {
            return 0;
        }
        for (int m = 0; m < p.models(); m++) {
            try (SafetensorsFile grams = SafetensorsFile.open(gramFile(gramRef(p, m)))) {
                if (gram(grams, p.tensor()).isEmpty()) {
                    return 0; // averaged
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e); // check() opened it moments ago
            }
        }
        return (2L * p.models() + 1) * p.columns() * p.columns() * Double.BYTES;
    }

    @Override
    public void check(TensorParameters p) throws RecipeException {
        for (int m = 0; m < p.models(); m++) {
            if (gramRef(p, m).isEmpty()) {
                throw new RecipeException("regmean needs parameter 'gram' (the Grams of its inputs) for model #"
                        + (m + 1));
            }
        }
        if (!linear(p)) {
            return;
        }
        for (int m = 0; m < p.models(); m++) {
            Path file = gramFile(gramRef(p, m));
            try (SafetensorsFile grams = SafetensorsFile.open(file)) {
                Optional<TensorInfo> g = gram(grams, p.tensor());
                if (g.isEmpty()) {
                    p.note("tensor '" + p.tensor() + "' has no Gram in " + file + " and is averaged");
                    return;
                }
                if (!Arrays.equals(g.get().shape(), new long[] {p.columns(), p.columns()})) {
                    throw new RecipeException("gram of tensor '" + p.tensor() + "' in " + file + " has shape "
                            + Arrays.toString(g.get().shape()) + "; its inputs have " + p.columns() + " features, so"
                            + " it must be [" + p.columns() + ", " + p.columns() + "]");
                }
            } catch (IOException e) {
                throw new RecipeException("gram input of model #" + (m + 1) + " (" + file + "): " + e.getMessage());
            }
        }
    }

    @Override
    public TensorMerge forTensor(TensorParameters p) {
        int n = p.models();
        Optional<double[][]> solved = linear(p) ? coefficients(p) : Optional.empty();
        if (solved.isEmpty()) {
            return (block, out) -> {
                for (int i = 0; i < block.length(); i++) {
                    float sum = 0;
                    for (int m = 0; m < n; m++) {
                        sum += block.models()[m][i];
                    }
                    out[i] = sum / n;
                }
            };
        }
        double[][] a = solved.get();
        int d = (int) p.columns();
        return new TensorMerge() {
            @Override
            public boolean rowAligned() {
                return true;
            }

            @Override
            public void merge(Block block, float[] out) {
                double[] row = new double[d];
                for (int start = 0; start < block.length(); start += d) {
                    Arrays.fill(row, 0);
                    for (int m = 0; m < n; m++) {
                        float[] w = block.models()[m];
                        double[] am = a[m];
                        for (int k = 0; k < d; k++) {
                            double x = w[start + k];
                            if (x == 0) {
                                continue;
                            }
                            int at = k * d;
                            for (int j = 0; j < d; j++) {
                                row[j] += x * am[at + j];
                            }
                        }
                    }
                    for (int j = 0; j < d; j++) {
                        out[start + j] = (float) row[j];
                    }
                }
            }
        };
    }

    /**
     * Aᵢ = G̃ᵢ (Σ G̃)⁻¹ for each model, [in, in] row-major, so that a merged row is Σᵢ (row of Wᵢ)·Aᵢ; empty (the
     * tensor is averaged, and noted) when some model's input has no Gram for it.
     */
    private static Optional<double[][]> coefficients(TensorParameters p) {
        int n = p.models();
        int d = (int) p.columns();
        double alpha = p.number("reduce_non_diagonal_ratio");
        double[][][] reduced = new double[n][][];
        for (int m = 0; m < n; m++) {
            Path file = gramFile(gramRef(p, m));
            try (SafetensorsFile grams = SafetensorsFile.open(file)) {
                Optional<TensorInfo> info = gram(grams, p.tensor());
                if (info.isEmpty()) {
                    return Optional.empty(); // noted when planned
                }
                float[] g = Floats.widen(grams.tensor(info.get().name()));
                reduced[m] = new double[d][d];
                for (int r = 0; r < d; r++) {
                    for (int c = 0; c < d; c++) {
                        reduced[m][r][c] = r == c ? g[r * d + c] : alpha * g[r * d + c];
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        RealMatrix sum = new Array2DRowRealMatrix(d, d);
        for (int m = 0; m < n; m++) {
            sum = sum.add(new Array2DRowRealMatrix(reduced[m], false));
        }
        DecompositionSolver solver;
        try {
            solver = new CholeskyDecomposition(sum, 1e-10, 0).getSolver();
        } catch (NonPositiveDefiniteMatrixException e) {
            double ridge = RIDGE * Math.max(sum.getTrace() / d, Double.MIN_NORMAL);
            for (int i = 0; i < d; i++) {
                sum.addToEntry(i, i, ridge);
            }
            solver = new CholeskyDecomposition(sum, 1e-10, 0).getSolver();
            p.note(String.format(Locale.ROOT, "tensor '%s': the sum of the Grams is singular (a feature no input"
                    + " showed); solved with a ridge of %.3g added to its diagonal", p.tensor(), ridge));
        }
        double[][] a = new double[n][];
        for (int m = 0; m < n; m++) {
            // (Σ G̃)⁻¹ G̃ᵢ, transposed: both are symmetric, so that is G̃ᵢ (Σ G̃)⁻¹
            RealMatrix x = solver.solve(new Array2DRowRealMatrix(reduced[m], false)).transpose();
            a[m] = new double[d * d];
            for (int r = 0; r < d; r++) {
                System.arraycopy(x.getRow(r), 0, a[m], r * d, d);
            }
        }
        return Optional.of(a);
    }
}
