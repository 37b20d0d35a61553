package io.modelmerge.engine.method;

import io.modelmerge.engine.kernel.TaskVectors;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Keeps exactly the entries of each model's task vector δ whose ranks lie in [first, end) of one order: |δ|
 * descending, ties by position (lowest index first). mergekit keeps exactly as many entries (its sorts break ties
 * as they happen to); this makes the choice among tied entries deterministic.
 *
 * <p>A selection gives the magnitudes at the window's edges: {@code upper}, that of rank first − 1 (the last
 * entry above the window; +∞ when the window starts at rank 0), and {@code lower}, that of rank end − 1. Entries
 * strictly between them are in the window; entries tied with an edge are in it when their rank is. One pass
 * counts, per block, the entries above and at each edge; then each block keeps all its tied entries, none, or
 * (where the window's edge falls inside the block) those whose index among the ties is in range.
 */
final class RankWindow {
    private final Window[] windows;
    private boolean counted;

    /** Whether a block keeps all its entries tied at an edge, none, or some. */
    private enum Keep { ALL, NONE, SOME }

    /** Entries tied at one edge value: per block, how many lie in earlier blocks and in it; which are kept. */
    private static final class Edge {
        final float value;
        final Map<Long, long[]> blocks = new HashMap<>();
        long ties;
        /** Indices among the ties that are kept: [keepFrom, keepTo). */
        long keepFrom;
        long keepTo;

        Edge(float value) {
            this.value = value;
        }

        Keep keep(long offset) {
            long[] block = blocks.get(offset);
            long before = block[0];
            long after = block[0] + block[1];
            if (block[1] == 0 || before >= keepFrom && after <= keepTo) {
                return Keep.ALL;
            }
            return after <= keepFrom || before >= keepTo ? Keep.NONE : Keep.SOME;
        }

        boolean keeps(long tie) {
            return tie >= keepFrom && tie < keepTo;
        }
    }

    /**
     * One model's window: its ranks, the magnitude above it ({@code upperValue}, +∞ when it starts at rank 0) and
     * the edges whose ties are cut: the lower one, and the upper one when it is finite and differs from the lower.
     */
    private record Window(long first, long end, float upperValue, Edge upper, Edge lower) {
    }

    RankWindow(int models) {
        this.windows = new Window[models];
    }

    /**
     * Keeps model m's ranks [first, end); {@code upper} is the magnitude at rank first − 1 (+∞ when first is 0),
     * {@code lower} that at rank end − 1. A model not set here is left to its caller.
     */
    void set(int m, long first, long end, float upper, float lower) {
        Edge upperEdge = upper == Float.POSITIVE_INFINITY || upper == lower ? null : new Edge(upper);
        windows[m] = new Window(first, end, upper, upperEdge, new Edge(lower));
    }

    /** Whether model m's ties are cut by this window. */
    boolean cuts(int m) {
        return windows[m] != null;
    }

    boolean any() {
        for (Window w : windows) {
            if (w != null) {
                return true;
            }
        }
        return false;
    }

    boolean counted() {
        return counted;
    }

    /** The pass that counts, per model, the entries above each edge in all and those at it per block. */
    Pass<Counts> pass() {
        return Pass.of("entries tied at the thresholds", Counts::new, this::end);
    }

    /** Model m's edges, upper first. */
    private List<Edge> edges(int m) {
        Window w = windows[m];
        return w == null ? List.of() : w.upper() == null ? List.of(w.lower()) : List.of(w.upper(), w.lower());
    }

    /** One worker's counts: per model and edge, the entries above it in all, and per block those equal to it. */
    final class Counts implements TensorMerge.Accumulator {
        private final long[][] above = new long[windows.length][2];
        private final List<List<Map<Long, Long>>> equal = new ArrayList<>();
        private final long[] counts = new long[2];

        Counts() {
            for (int m = 0; m < windows.length; m++) {
                List<Map<Long, Long>> perEdge = new ArrayList<>();
                for (Edge ignored : edges(m)) {
                    perEdge.add(new HashMap<>());
                }
                equal.add(perEdge);
            }
        }

        @Override
        public void add(Block block) {
            for (int m = 0; m < windows.length; m++) {
                List<Edge> edges = edges(m);
                for (int j = 0; j < edges.size(); j++) {
                    counts[0] = 0;
                    counts[1] = 0;
                    TaskVectors.countAgainst(block.models()[m], block.base(), edges.get(j).value, block.length(), counts);
                    above[m][j] += counts[0];
                    equal.get(m).get(j).put(block.offset(), counts[1]);
                }
            }
        }
    }

    private void end(List<Counts> parts) {
        for (int m = 0; m < windows.length; m++) {
            List<Edge> edges = edges(m);
            for (int j = 0; j < edges.size(); j++) {
                Edge edge = edges.get(j);
                long above = 0;
                TreeMap<Long, Long> equal = new TreeMap<>();
                for (Counts part : parts) {
                    above += part.above[m][j];
                    equal.putAll(part.equal.get(m).get(j));
                }
                for (var block : equal.entrySet()) {
                    edge.blocks.put(block.getKey(), new long[] {edge.ties, block.getValue()});
                    edge.ties += block.getValue();
                }
                // the ties hold ranks [above, above + ties) of the order; the window keeps those in [first, end)
                edge.keepFrom = Math.clamp(windows[m].first() - above, 0, edge.ties);
                edge.keepTo = Math.clamp(windows[m].end() - above, 0, edge.ties);
            }
        }
        counted = true;
    }

    /** Σ |δ| of model m's entries tied at its lower edge that the window drops (what a ≥ lower mask overcounts). */
    double droppedAtLower(int m) {
        Edge lower = windows[m].lower();
        return (double) (lower.ties - (lower.keepTo - lower.keepFrom)) * lower.value;
    }

    /**
     * Thins model m's block in place to its kept entries of δ·scale, the rest zero. A block where each edge keeps
     * all its ties or none runs as one vector loop; one where an edge's kept ties begin or end, element by element.
     */
    void thin(Block block, int m, float scale) {
        Window w = windows[m];
        float[] x = block.models()[m];
        float[] base = block.base();
        Keep atLower = w.lower().keep(block.offset());
        Keep atUpper = w.upper() == null ? atLower : w.upper().keep(block.offset());
        if (atLower != Keep.SOME && atUpper != Keep.SOME) {
            float bottom = atLower == Keep.ALL ? w.lower().value : Math.nextUp(w.lower().value);
            if (w.upperValue() == Float.POSITIVE_INFINITY) {
                TaskVectors.thin(x, base, new TaskVectors.Thinning.Magnitude(bottom), scale, block.length());
            } else {
                float top = atUpper == Keep.ALL ? Math.nextUp(w.upperValue()) : w.upperValue();
                TaskVectors.keepBand(x, base, bottom, top, scale, block.length());
            }
            return;
        }
        long lowerTie = w.lower().blocks.get(block.offset())[0];
        long upperTie = w.upper() == null ? 0 : w.upper().blocks.get(block.offset())[0];
        for (int i = 0; i < block.length(); i++) {
            float d = x[i] - base[i];
            float magnitude = Math.abs(d);
            boolean keep;
            if (magnitude > w.lower().value && magnitude < w.upperValue()) {
                keep = true;
            } else if (magnitude == w.lower().value) {
                keep = w.lower().keeps(lowerTie++);
            } else if (w.upper() != null && magnitude == w.upperValue()) {
                keep = w.upper().keeps(upperTie++);
            } else {
                keep = false;
            }
            x[i] = keep ? d * scale : 0f;
        }
    }
}
