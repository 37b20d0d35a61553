package io.modelmerge.registry.service;

import io.modelmerge.registry.client.VersionRef;
import io.modelmerge.registry.db.ModelTable;
import io.modelmerge.registry.model.RegistryException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Optional;

/**
 * Finds the version a ref names, by number, through an alias, or the newest READY one: one query each, as this
 * is on the path of every resolve.
 */
public final class VersionLookup {
    private static final String BY_NUMBER = """
            SELECT v.id FROM model_version v JOIN model m ON m.id = v.model_id
            WHERE m.namespace = ? AND m.name = ? AND v.version = ?""";
    private static final String BY_ALIAS = """
            SELECT a.version_id FROM alias a JOIN model m ON m.id = a.model_id
            WHERE m.namespace = ? AND m.name = ? AND a.name = ?""";
    private static final String LATEST = """
            SELECT v.id FROM model_version v JOIN model m ON m.id = v.model_id
            WHERE m.namespace = ? AND m.name = ? AND v.status = 'READY' ORDER BY v.version DESC LIMIT 1""";

    private VersionLookup() {
    }

    /** The version row {@code ref} names, or empty if the model, number or alias does not exist. */
    public static Optional<Long> find(Connection c, VersionRef ref) throws SQLException {
        String sql = ref.version().isPresent() ? BY_NUMBER : ref.alias().isPresent() ? BY_ALIAS : LATEST;
        try (PreparedStatement s = c.prepareStatement(sql)) {
            s.setString(1, ref.model().namespace());
            s.setString(2, ref.model().name());
            if (ref.version().isPresent()) {
                s.setInt(3, ref.version().get());
            } else if (ref.alias().isPresent()) {
                s.setString(3, ref.alias().get());
            }
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? Optional.of(rs.getLong(1)) : Optional.empty();
            }
        }
    }

    /** Like {@link #find}, with a 404 that says which part of the ref is missing. */
    public static long require(Connection c, VersionRef ref) throws SQLException {
        Optional<Long> found = find(c, ref);
        if (found.isPresent()) {
            return found.get();
        }
        ModelTable.idOf(c, ref.model());
        throw RegistryException.notFound("Model " + ref.model() + ref.version().map(v -> " has no version " + v)
                .or(() -> ref.alias().map(a -> " has no alias '" + a + "'"))
                .orElse(" has no READY version"));
    }
}
