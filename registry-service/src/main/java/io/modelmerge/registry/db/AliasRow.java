package io.modelmerge.registry.db;

import java.time.OffsetDateTime;
import java.util.List;

/** An alias as stored: the version it points at now, and every move it made (oldest first). */
public record AliasRow(String alias, String model, int version, String ref, List<Move> history) {

    /** One move; {@code fromVersion} is null when the alias was created, {@code toVersion} when deleted. */
    public record Move(Integer fromVersion, Integer toVersion, String movedBy, OffsetDateTime movedAt) {
    }
}
