package io.modelmerge.engine.delta;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.safetensors.DType;
import java.io.IOException;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@code delta.json}: what a stored delta is and how it was made, beside its tensors in {@code delta.safetensors}.
 *
 * @param operation    extract, sparsify, bitdelta or compose
 * @param parameters   the operation's parameters as given (density, seed, rescale, ...)
 * @param base         the base the delta applies to, with its content digest; {@code apply} refuses another
 * @param fineTune     the model the delta was taken from
 * @param tensors      how each tensor of the fine-tune is stored, with its reconstruction error
 * @param tied         tensors stored once for several names: name → the name it is stored under
 * @param deltaBytes   the delta's tensor bytes
 * @param fineTuneBytes the fine-tune's tensor bytes
 */
public record DeltaManifest(int formatVersion, String operation, Map<String, Object> parameters, Source base,
                            Source fineTune, List<TensorEntry> tensors, Map<String, String> tied, long deltaBytes,
                            long fineTuneBytes) {
    public static final String FILE_NAME = Checkpoint.DELTA_MANIFEST;
    public static final String WEIGHTS = Checkpoint.DELTA_WEIGHTS;
    /** The exact values of the few elements where base + Δ (in F32, rounded to the dtype) misses the fine-tune. */
    public static final String EXACT = Checkpoint.DELTA_EXACT;
    public static final int FORMAT_VERSION = 1;

    private static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT)
            // the maps are held unordered (Map.copyOf): written by key, the same delta writes the same bytes
            .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    public DeltaManifest {
        parameters = Map.copyOf(parameters);
        tensors = List.copyOf(tensors);
        tied = Map.copyOf(tied);
    }

    /** A model a delta refers to: the reference it was given as and its content digest. */
    public record Source(String ref, String digest) {
    }

    /** How one tensor is stored. */
    public enum Encoding {
        /** Δ in F32, same shape: {@code <name>}. */
        DENSE,
        /** The kept entries of Δ in F32, {@code <name>.values}, with {@code <name>.bitmap} or {@code <name>.indices}. */
        SPARSE,
        /** α·sign(Δ): {@code <name>.signs} packed 8 per byte, {@code <name>.scale} per tensor or per row. */
        SIGNS,
        /** The fine-tune's own tensor, {@code <name>}: the base lacks it or shapes it differently. */
        WHOLE
    }

    /**
     * One tensor of the fine-tune.
     *
     * @param dtype          the fine-tune's dtype, which {@code apply} writes
     * @param kept           SPARSE: entries stored
     * @param exact          DENSE: elements whose exact values are in {@link #EXACT}
     * @param relativeError  ‖θ̂ − θ‖ / ‖θ‖ of the reconstruction against the fine-tune (0 when exact)
     * @param deltaError     ‖Δ̂ − Δ‖ / ‖Δ‖ (0 when Δ is 0)
     */
    public record TensorEntry(String name, Encoding encoding, DType dtype, long[] shape, long kept, long exact,
                              double relativeError, double deltaError) {
        public long elements() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    /** The fine-tune's bytes over the delta's: how many times smaller the delta is. */
    public double compressionRatio() {
        return deltaBytes == 0 ? 0 : (double) fineTuneBytes / deltaBytes;
    }

    /** The tensor reconstructed worst, by relative error against the fine-tune. */
    public Optional<TensorEntry> worst() {
        return tensors.stream().max(Comparator.comparingDouble(TensorEntry::relativeError));
    }

    public Optional<TensorEntry> tensor(String name) {
        return tensors.stream().filter(t -> t.name().equals(name)).findFirst();
    }

    public byte[] toJson() {
        try {
            return JSON.writeValueAsBytes(this);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public static DeltaManifest parse(String source, byte[] json) throws IOException {
        DeltaManifest manifest;
        try {
            manifest = JSON.readValue(json, DeltaManifest.class);
        } catch (IOException e) {
            throw new IOException(source + ": not a delta manifest (" + e.getMessage().lines().findFirst().orElse("")
                    + ")");
        }
        if (manifest.formatVersion() != FORMAT_VERSION) {
            throw new IOException(source + ": delta format version " + manifest.formatVersion() + ", this build reads "
                    + FORMAT_VERSION);
        }
        return manifest;
    }
}
