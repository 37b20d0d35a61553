package io.modelmerge.registry.service;

import io.modelmerge.registry.api.RegistryException;
import io.modelmerge.registry.db.AliasTable;
import io.modelmerge.registry.db.ModelTable;
import io.modelmerge.registry.db.VersionTable;
import io.modelmerge.registry.model.VersionRef;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Optional;

/** Finds the version a ref names: by number, through an alias, or the newest READY one. */
public final class VersionLookup {
    private VersionLookup() {
    }

    /** The version row {@code ref} names, or empty if the model, number or alias does not exist. */
    public static Optional<Long> find(Connection c, VersionRef ref) throws SQLException {
        Optional<Long> modelId = ModelTable.findId(c, ref.model());
        return modelId.isEmpty() ? Optional.empty() : inModel(c, modelId.get(), ref);
    }

    /** Like {@link #find}, with a 404 that says which part of the ref is missing. */
    public static long require(Connection c, VersionRef ref) throws SQLException {
        return inModel(c, ModelTable.idOf(c, ref.model()), ref).orElseThrow(() -> RegistryException.notFound(
                "Model " + ref.model() + ref.version().map(v -> " has no version " + v)
                        .or(() -> ref.alias().map(a -> " has no alias '" + a + "'"))
                        .orElse(" has no READY version")));
    }

    private static Optional<Long> inModel(Connection c, long modelId, VersionRef ref) throws SQLException {
        if (ref.version().isPresent()) {
            return VersionTable.idOf(c, modelId, ref.version().get());
        }
        if (ref.alias().isPresent()) {
            return AliasTable.versionId(c, modelId, ref.alias().get());
        }
        return VersionTable.latestReady(c, modelId);
    }
}
