package io.modelmerge.registry.db;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** The {@code alias} table and the history of every move in {@code alias_move}. */
public final class AliasTable {
    private AliasTable() {
    }

    /**
     * Points {@code alias} at version row {@code versionId} (number {@code toVersion}) and records the move.
     * Call with the model's row locked, so concurrent moves of one alias are recorded in the order they happen.
     */
    public static void move(Connection c, long modelId, String alias, long versionId, int toVersion, String movedBy)
            throws SQLException {
        Optional<Integer> from = current(c, modelId, alias);
        if (from.isPresent() && from.get() == toVersion) {
            return;
        }
        try (PreparedStatement s = c.prepareStatement("""
                INSERT INTO alias (model_id, name, version_id) VALUES (?, ?, ?)
                ON CONFLICT (model_id, name) DO UPDATE SET version_id = excluded.version_id""")) {
            s.setLong(1, modelId);
            s.setString(2, alias);
            s.setLong(3, versionId);
            s.executeUpdate();
        }
        record(c, modelId, alias, from.orElse(null), toVersion, movedBy);
    }

    /** Removes {@code alias}, recording a move to nothing; false if there was no such alias. */
    public static boolean delete(Connection c, long modelId, String alias, String movedBy) throws SQLException {
        Optional<Integer> from = current(c, modelId, alias);
        if (from.isEmpty()) {
            return false;
        }
        try (PreparedStatement s = c.prepareStatement("DELETE FROM alias WHERE model_id = ? AND name = ?")) {
            s.setLong(1, modelId);
            s.setString(2, alias);
            s.executeUpdate();
        }
        record(c, modelId, alias, from.get(), null, movedBy);
        return true;
    }

    /** The version number {@code alias} points at. */
    public static Optional<Integer> current(Connection c, long modelId, String alias) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                SELECT v.version FROM alias a JOIN model_version v ON v.id = a.version_id
                WHERE a.model_id = ? AND a.name = ?""")) {
            s.setLong(1, modelId);
            s.setString(2, alias);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? Optional.of(rs.getInt(1)) : Optional.empty();
            }
        }
    }

    /** The version row {@code alias} points at. */
    public static Optional<Long> versionId(Connection c, long modelId, String alias) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("SELECT version_id FROM alias WHERE model_id = ? AND name = ?")) {
            s.setLong(1, modelId);
            s.setString(2, alias);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? Optional.of(rs.getLong(1)) : Optional.empty();
            }
        }
    }

    /** Every current alias of the model, by name, each with its history. */
    public static List<AliasRow> list(Connection c, long modelId, String model) throws SQLException {
        List<String> names = new ArrayList<>();
        try (PreparedStatement s = c.prepareStatement("SELECT name FROM alias WHERE model_id = ? ORDER BY name")) {
            s.setLong(1, modelId);
            try (ResultSet rs = s.executeQuery()) {
                while (rs.next()) {
                    names.add(rs.getString(1));
                }
            }
        }
        List<AliasRow> views = new ArrayList<>();
        for (String name : names) {
            views.add(view(c, modelId, model, name).orElseThrow());
        }
        return views;
    }

    public static Optional<AliasRow> view(Connection c, long modelId, String model, String alias) throws SQLException {
        Optional<Integer> version = current(c, modelId, alias);
        if (version.isEmpty()) {
            return Optional.empty();
        }
        List<AliasRow.Move> history = new ArrayList<>();
        try (PreparedStatement s = c.prepareStatement("""
                SELECT from_version, to_version, moved_by, moved_at FROM alias_move
                WHERE model_id = ? AND alias = ? ORDER BY id""")) {
            s.setLong(1, modelId);
            s.setString(2, alias);
            try (ResultSet rs = s.executeQuery()) {
                while (rs.next()) {
                    history.add(new AliasRow.Move(rs.getObject(1, Integer.class), rs.getObject(2, Integer.class),
                            rs.getString(3), rs.getObject(4, OffsetDateTime.class)));
                }
            }
        }
        return Optional.of(new AliasRow(alias, model, version.get(), model + "@" + version.get(), history));
    }

    private static void record(Connection c, long modelId, String alias, Integer from, Integer to, String movedBy)
            throws SQLException {
        try (PreparedStatement s = c.prepareStatement(
                "INSERT INTO alias_move (model_id, alias, from_version, to_version, moved_by) VALUES (?, ?, ?, ?, ?)")) {
            s.setLong(1, modelId);
            s.setString(2, alias);
            setVersion(s, 3, from);
            setVersion(s, 4, to);
            s.setString(5, movedBy);
            s.executeUpdate();
        }
    }

    private static void setVersion(PreparedStatement s, int index, Integer version) throws SQLException {
        if (version == null) {
            s.setNull(index, Types.INTEGER);
        } else {
            s.setInt(index, version);
        }
    }
}
