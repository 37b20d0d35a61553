package io.modelmerge.registry.db;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.OffsetDateTime;
import java.util.Optional;
import java.util.UUID;

/** The {@code index_task} table: one row per scan of a prefix, with its report. */
public final class IndexTaskTable {
    private IndexTaskTable() {
    }

    public static void create(Connection c, UUID id, String uri, String namespace, String createdBy) throws SQLException {
        try (PreparedStatement s = c.prepareStatement(
                "INSERT INTO index_task (id, uri, namespace, state, report, created_by) VALUES (?, ?, ?, 'RUNNING', ?::jsonb, ?)")) {
            s.setObject(1, id);
            s.setString(2, uri);
            s.setString(3, namespace);
            s.setString(4, Json.write(IndexTaskRow.Report.empty()));
            s.setString(5, createdBy);
            s.executeUpdate();
        }
    }

    /** Stores the report so far; {@code state} other than RUNNING ends the task. */
    public static void update(Connection c, UUID id, String state, IndexTaskRow.Report report, String error)
            throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                UPDATE index_task SET state = ?, report = ?::jsonb, error = ?,
                       finished_at = CASE WHEN ? = 'RUNNING' THEN NULL ELSE now() END
                WHERE id = ?""")) {
            s.setString(1, state);
            s.setString(2, Json.write(report));
            s.setString(3, error);
            s.setString(4, state);
            s.setObject(5, id);
            s.executeUpdate();
        }
    }

    public static Optional<IndexTaskRow> find(Connection c, UUID id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("SELECT * FROM index_task WHERE id = ?")) {
            s.setObject(1, id);
            try (ResultSet rs = s.executeQuery()) {
                if (!rs.next()) {
                    return Optional.empty();
                }
                return Optional.of(new IndexTaskRow(rs.getObject("id", UUID.class).toString(), rs.getString("uri"),
                        rs.getString("namespace"), rs.getString("state"),
                        Json.read(rs.getString("report"), IndexTaskRow.Report.class), rs.getString("error"),
                        rs.getString("created_by"), rs.getObject("created_at", OffsetDateTime.class),
                        rs.getObject("finished_at", OffsetDateTime.class)));
            }
        }
    }

    /** Marks tasks a previous process left RUNNING as FAILED; they died with it. Returns how many. */
    public static int failInterrupted(Connection c) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                UPDATE index_task SET state = 'FAILED', error = 'interrupted: the registry stopped while it ran',
                       finished_at = now() WHERE state = 'RUNNING'""")) {
            return s.executeUpdate();
        }
    }
}
