package io.modelmerge.engine.exec;

import io.modelmerge.engine.delta.DeltaManifest;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/** The README.md of a stored delta: what it is, what it applies to, its size and how close it comes. */
final class DeltaCard {
    private DeltaCard() {
    }

    static String write(String title, DeltaManifest m) {
        StringBuilder card = new StringBuilder();
        card.append("# ").append(title).append("\n\n");
        card.append("A delta (modelmerge ").append(m.operation()).append(m.parameters().isEmpty() ? ""
                : " " + new TreeMap<>(m.parameters())).append(") of `").append(m.fineTune().ref())
                .append("` from its base `").append(m.base().ref()).append("`.\n\n");
        card.append("- base digest: `").append(m.base().digest()).append("` (`mergectl delta apply` refuses another base)\n");
        card.append(String.format(Locale.ROOT, "- size: %,d bytes of tensors for the fine-tune's %,d: %.2f× smaller%n",
                m.deltaBytes(), m.fineTuneBytes(), m.compressionRatio()));
        Map<DeltaManifest.Encoding, Long> counts = new TreeMap<>();
        m.tensors().forEach(t -> counts.merge(t.encoding(), 1L, Long::sum));
        card.append("- tensors: ").append(counts).append(m.tied().isEmpty() ? "" : ", tied: " + m.tied()).append('\n');
        m.worst().ifPresent(w -> card.append(String.format(Locale.ROOT,
                "- worst reconstruction: `%s`, relative Frobenius error %.3g against the fine-tune%n",
                w.name(), w.relativeError())));
        return card.toString();
    }
}
