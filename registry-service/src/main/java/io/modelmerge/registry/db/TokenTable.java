package io.modelmerge.registry.db;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** The {@code api_token} table. */
public final class TokenTable {
    private static final String COLUMNS = "id, name, secret_sha256, scopes, namespaces, aliases, created_by,"
            + " created_at, expires_at, revoked_at, last_used_at";

    private TokenTable() {
    }

    public static TokenRow insert(Connection c, String id, String name, byte[] secretSha256, List<String> scopes,
                                  List<String> namespaces, List<String> aliases, String createdBy,
                                  OffsetDateTime expiresAt) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("INSERT INTO api_token (id, name, secret_sha256, scopes,"
                + " namespaces, aliases, created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING " + COLUMNS)) {
            s.setString(1, id);
            s.setString(2, name);
            s.setBytes(3, secretSha256);
            s.setArray(4, c.createArrayOf("text", scopes.toArray()));
            s.setArray(5, c.createArrayOf("text", namespaces.toArray()));
            s.setArray(6, c.createArrayOf("text", aliases.toArray()));
            s.setString(7, createdBy);
            s.setObject(8, expiresAt);
            try (ResultSet rs = s.executeQuery()) {
                rs.next();
                return row(rs);
            }
        }
    }

    public static Optional<TokenRow> find(Connection c, String id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("SELECT " + COLUMNS + " FROM api_token WHERE id = ?")) {
            s.setString(1, id);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? Optional.of(row(rs)) : Optional.empty();
            }
        }
    }

    /** Every token, newest first. */
    public static List<TokenRow> all(Connection c) throws SQLException {
        List<TokenRow> rows = new ArrayList<>();
        try (PreparedStatement s = c.prepareStatement("SELECT " + COLUMNS + " FROM api_token ORDER BY created_at DESC, id");
             ResultSet rs = s.executeQuery()) {
            while (rs.next()) {
                rows.add(row(rs));
            }
        }
        return rows;
    }

    public static boolean any(Connection c) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("SELECT EXISTS (SELECT 1 FROM api_token)");
             ResultSet rs = s.executeQuery()) {
            rs.next();
            return rs.getBoolean(1);
        }
    }

    /** Marks the token revoked now; false if there is no such token or it was revoked before. */
    public static boolean revoke(Connection c, String id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement(
                "UPDATE api_token SET revoked_at = now() WHERE id = ? AND revoked_at IS NULL")) {
            s.setString(1, id);
            return s.executeUpdate() == 1;
        }
    }

    /** Records a use, at most once a minute per token (a read stays a read, nearly always). */
    public static void used(Connection c, String id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("UPDATE api_token SET last_used_at = now() WHERE id = ?"
                + " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')")) {
            s.setString(1, id);
            s.executeUpdate();
        }
    }

    private static TokenRow row(ResultSet rs) throws SQLException {
        return new TokenRow(rs.getString("id"), rs.getString("name"), rs.getBytes("secret_sha256"),
                SqlArrays.strings(rs.getArray("scopes")), SqlArrays.strings(rs.getArray("namespaces")),
                SqlArrays.strings(rs.getArray("aliases")),
                rs.getString("created_by"), rs.getObject("created_at", OffsetDateTime.class),
                rs.getObject("expires_at", OffsetDateTime.class), rs.getObject("revoked_at", OffsetDateTime.class),
                rs.getObject("last_used_at", OffsetDateTime.class));
    }

}
