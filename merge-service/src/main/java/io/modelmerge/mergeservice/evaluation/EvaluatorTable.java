package io.modelmerge.mergeservice.evaluation;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** The {@code evaluator} table. */
final class EvaluatorTable {
    private EvaluatorTable() {
    }

    /** Registers {@code e}, or gives an existing name@version its new URL and secret. */
    static RegisteredEvaluator upsert(Connection c, RegisteredEvaluator e) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                INSERT INTO evaluator (name, version, url, secret, registered_by) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (name, version) DO UPDATE SET url = excluded.url, secret = excluded.secret,
                    registered_by = excluded.registered_by, registered_at = now()
                RETURNING registered_at""")) {
            s.setString(1, e.name());
            s.setString(2, e.version());
            s.setString(3, e.url());
            s.setString(4, e.secret());
            s.setString(5, e.registeredBy());
            try (ResultSet rs = s.executeQuery()) {
                rs.next();
                return new RegisteredEvaluator(e.name(), e.version(), e.url(), e.secret(), e.registeredBy(),
                        rs.getObject(1, OffsetDateTime.class));
            }
        }
    }

    static Optional<RegisteredEvaluator> find(Connection c, String name, String version) throws SQLException {
        try (PreparedStatement s = c.prepareStatement(
                "SELECT * FROM evaluator WHERE name = ? AND version = ?")) {
            s.setString(1, name);
            s.setString(2, version);
            List<RegisteredEvaluator> found = rows(s);
            return found.stream().findFirst();
        }
    }

    /** Every evaluator, by name and version. */
    static List<RegisteredEvaluator> all(Connection c) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("SELECT * FROM evaluator ORDER BY name, version")) {
            return rows(s);
        }
    }

    private static List<RegisteredEvaluator> rows(PreparedStatement s) throws SQLException {
        List<RegisteredEvaluator> rows = new ArrayList<>();
        try (ResultSet rs = s.executeQuery()) {
            while (rs.next()) {
                rows.add(new RegisteredEvaluator(rs.getString("name"), rs.getString("version"), rs.getString("url"),
                        rs.getString("secret"), rs.getString("registered_by"),
                        rs.getObject("registered_at", OffsetDateTime.class)));
            }
        }
        return rows;
    }
}
