package io.modelmerge.engine.exec;

import io.modelmerge.engine.delta.DeltaManifest.Encoding;
import io.modelmerge.engine.delta.DeltaManifest.TensorEntry;
import io.modelmerge.engine.delta.DeltaManifest;
import io.modelmerge.engine.kernel.Floats;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.storage.blob.BlobCache;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.checkpoint.Checkpoint;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.SafetensorsLayout;
import io.modelmerge.storage.safetensors.SafetensorsWriter;
import io.modelmerge.storage.safetensors.TensorInfo;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * θ = θ_base + Σ λᵢ·Δ̂ᵢ for stored deltas of one base ({@code apply}: a checkpoint, rounded to each tensor's
 * dtype, the fine-tune's tag-alongs beside it), or Σ λᵢ·Δ̂ᵢ as one dense delta ({@code compose}). A delta whose
 * recorded base digest is not this base's is refused before anything is written, naming both. One delta applied
 * whole (λ = 1) gives the fine-tune back bit for bit: its exact values replace the few elements F32 misses.
 */
public final class DeltaApplication {
    private final MergeOptions options;

    public DeltaApplication(MergeOptions options) {
        this.options = options;
    }

    /** One delta and its scale. */
    public record Part(String location, double lambda) {
    }

    /** Writes base + Σ λ·Δ̂ as a checkpoint into the new directory {@code outDir}; returns the tensors written. */
    public int apply(String baseRef, List<Part> parts, Path outDir) throws IOException, RecipeException {
        return run(baseRef, parts, outDir, false);
    }

    /** Writes Σ λ·Δ̂ as one dense delta of the same base into the new directory {@code outDir}. */
    public int compose(String baseRef, List<Part> parts, Path outDir) throws IOException, RecipeException {
        return run(baseRef, parts, outDir, true);
    }

    private int run(String baseRef, List<Part> parts, Path outDir, boolean compose) throws IOException, RecipeException {
        if (parts.isEmpty()) {
            throw new RecipeException("no delta given");
        }
        StagedOutput.checkTarget(outDir);
        BlobCache cache = new BlobCache(options.cacheDir(), options.cacheBytes());
        List<StoredDelta> deltas = new ArrayList<>();
        List<BlobStore> stores = new ArrayList<>();
        try (InputModel base = InputModel.open(baseRef, options, cache); StagedOutput output = new StagedOutput(outDir)) {
            for (Part part : parts) {
                deltas.add(StoredDelta.open(InputModel.openCheckpoint(part.location(), options, stores), cache));
            }
            String digest = base.contentDigest();
            for (StoredDelta delta : deltas) {
                if (!delta.manifest().base().digest().equals(digest)) {
                    throw new RecipeException("delta " + delta.location() + " was taken from base "
                            + delta.manifest().base().ref() + " (" + delta.manifest().base().digest() + "), not from "
                            + baseRef + " (" + digest + ")");
                }
            }
            DeltaManifest first = deltas.getFirst().manifest();
            List<String> names = new ArrayList<>();
            first.tensors().forEach(t -> names.add(t.name()));
            names.addAll(first.tied().keySet());
            for (StoredDelta delta : deltas) {
                for (String name : names) {
                    checkSame(name, deltas.getFirst().entry(name), delta.entry(name), delta.location());
                }
            }
            List<TensorSpec> specs = new ArrayList<>();
            for (String name : names) {
                TensorEntry entry = deltas.getFirst().entry(name);
                if (compose && entry.encoding() != Encoding.WHOLE) {
                    specs.add(new TensorSpec(name, DType.F32, entry.shape()));
                } else {
                    specs.add(new TensorSpec(name, entry.dtype(), entry.shape()));
                }
                if (entry.encoding() != Encoding.WHOLE && base.tensor(entry.name()).isEmpty()) {
                    throw new RecipeException("base " + baseRef + " has no tensor '" + name + "' that the delta changes");
                }
            }
            Files.createDirectories(output.dir());
            String file = compose ? DeltaManifest.WEIGHTS : Checkpoint.SINGLE_FILE;
            SafetensorsLayout layout = SafetensorsLayout.of(specs, Map.of("format", "pt"));
            boolean exactly = parts.size() == 1 && parts.getFirst().lambda() == 1.0 && !compose;
            try (SafetensorsWriter writer = SafetensorsWriter.create(output.dir().resolve(file), layout)) {
                ExecutorService pool = Executors.newFixedThreadPool(options.threads(),
                        Thread.ofPlatform().daemon().name("delta-apply-", 0).factory());
                try {
                    List<Future<Void>> jobs = new ArrayList<>();
                    for (TensorInfo spec : layout.tensors()) {
                        jobs.add(pool.submit(() -> {
                            rebuild(spec, base, deltas, parts, writer, exactly, compose);
                            return null;
                        }));
                    }
                    for (Future<Void> job : jobs) {
                        MergeExecutor.await(job);
                    }
                } finally {
                    pool.shutdownNow();
                }
                writer.commit();
            }
            MergeExecutor.copyTagAlong(deltas.getFirst().checkpoint(), output.dir(), name -> !name.equals("README.md"));
            if (compose) {
                List<DeltaManifest.TensorEntry> entries = new ArrayList<>();
                for (String name : first.tensors().stream().map(TensorEntry::name).toList()) {
                    TensorEntry e = deltas.getFirst().entry(name);
                    Encoding encoding = e.encoding() == Encoding.WHOLE ? Encoding.WHOLE : Encoding.DENSE;
                    entries.add(new TensorEntry(name, encoding, e.dtype(), e.shape(), e.elements(), 0, Double.NaN,
                            Double.NaN));
                }
                List<Map<String, Object>> recorded = new ArrayList<>();
                parts.forEach(p -> recorded.add(Map.of("delta", p.location(), "lambda", p.lambda())));
                long bytes = layout.tensors().stream().mapToLong(TensorInfo::byteLength).sum();
                DeltaManifest manifest = new DeltaManifest(DeltaManifest.FORMAT_VERSION, "compose",
                        Map.of("parts", recorded), first.base(), new DeltaManifest.Source("composed", ""), entries,
                        Map.of(), bytes, first.fineTuneBytes());
                Files.write(output.dir().resolve(DeltaManifest.FILE_NAME), manifest.toJson());
            }
            output.publish();
            return specs.size();
        } finally {
            deltas.forEach(StoredDelta::close);
            for (BlobStore store : stores) {
                store.close();
            }
        }
    }

    private static void checkSame(String name, TensorEntry first, TensorEntry other, String where) throws RecipeException {
        if (!Arrays.equals(first.shape(), other.shape()) || first.dtype() != other.dtype()) {
            throw new RecipeException("delta " + where + " stores '" + name + "' as " + other.dtype()
                    + Arrays.toString(other.shape()) + ", the first delta as " + first.dtype()
                    + Arrays.toString(first.shape()));
        }
    }

    /** One output tensor: base + Σ λ·Δ̂ chunk by chunk, rounded to its dtype (Σ λ·Δ̂ alone when composing). */
    private void rebuild(TensorInfo spec, InputModel base, List<StoredDelta> deltas, List<Part> parts,
                         SafetensorsWriter writer, boolean exactly, boolean compose) throws IOException {
        String name = spec.name();
        long n = spec.elementCount();
        int chunk = (int) Math.min(n, Math.max(1 << 13, options.memoryBytes() / options.threads() / 16) & ~7L);
        chunk = Math.max(chunk, 1);
        List<StoredDelta.Reader> readers = new ArrayList<>();
        for (StoredDelta delta : deltas) {
            readers.add(delta.reader(name));
        }
        boolean whole = readers.getFirst().entry().encoding() == Encoding.WHOLE;
        if (whole && !Floats.supports(spec.dtype())) {
            writer.write(name, 0, deltas.getFirst().raw(name));
            return;
        }
        float[] values = new float[chunk];
        MemorySegment bytes = MemorySegment.ofArray(new byte[chunk * (spec.dtype().bits() / 8)]);
        for (long from = 0; from < n; from += chunk) {
            int length = (int) Math.min(chunk, n - from);
            if (whole) {
                readers.getFirst().addTo(from, length, 1f, values);
            } else {
                if (compose) {
                    Arrays.fill(values, 0, length, 0f);
                } else {
                    // a tied name is rebuilt from the tensor it shares, the base's one of that name included
                    base.source(readers.getFirst().entry().name()).read(from, length, values);
                }
                for (int k = 0; k < readers.size(); k++) {
                    readers.get(k).addTo(from, length, (float) parts.get(k).lambda(), values);
                }
                if (exactly) {
                    Floats.round(values, length, spec.dtype());
                    readers.getFirst().correct(from, length, values);
                }
            }
            Floats.narrow(values, length, bytes, spec.dtype(), 0);
            writer.write(name, from * (spec.dtype().bits() / 8), bytes.asSlice(0, (long) length * (spec.dtype().bits() / 8)));
        }
    }
}
