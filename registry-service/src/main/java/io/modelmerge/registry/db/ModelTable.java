package io.modelmerge.registry.db;

import io.modelmerge.registry.client.ModelName;
import io.modelmerge.registry.model.RegistryException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** The {@code model} table. */
public final class ModelTable {
    private static final String VIEW = """
            SELECT m.id, m.namespace, m.name, m.description, m.tags, m.created_at, m.updated_at,
                   (SELECT max(v.version) FROM model_version v WHERE v.model_id = m.id AND v.status = 'READY') AS latest,
                   (SELECT count(*) FROM model_version v WHERE v.model_id = m.id) AS versions
            FROM model m
            """;

    private ModelTable() {
    }

    public static ModelRow create(Connection c, ModelName name, String description, Map<String, String> tags)
            throws SQLException {
        if (!insert(c, name, description, tags)) {
            throw RegistryException.conflict("Model " + name + " already exists");
        }
        return find(c, name).orElseThrow();
    }

    public static Optional<ModelRow> find(Connection c, ModelName name) throws SQLException {
        try (PreparedStatement s = c.prepareStatement(VIEW + " WHERE m.namespace = ? AND m.name = ?")) {
            s.setString(1, name.namespace());
            s.setString(2, name.name());
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? Optional.of(view(rs)) : Optional.empty();
            }
        }
    }

    /** The model's id, or 404. */
    public static long idOf(Connection c, ModelName name) throws SQLException {
        return selectId(c, name, "").orElseThrow(() -> notFound(name));
    }

    /** The model's id, with its row locked until the transaction ends: registrations of one model queue here. */
    public static long lock(Connection c, ModelName name) throws SQLException {
        return selectId(c, name, " FOR UPDATE").orElseThrow(() -> notFound(name));
    }

    /** Inserts the model unless one of that name exists; whether it did. */
    private static boolean insert(Connection c, ModelName name, String description, Map<String, String> tags)
            throws SQLException {
        try (PreparedStatement s = c.prepareStatement(
                "INSERT INTO model (namespace, name, description, tags) VALUES (?, ?, ?, ?::jsonb) ON CONFLICT DO NOTHING")) {
            s.setString(1, name.namespace());
            s.setString(2, name.name());
            s.setString(3, description);
            s.setString(4, Json.write(tags));
            return s.executeUpdate() == 1;
        }
    }

    /**
     * Like {@link #lock}, creating the model first (with {@code description} and {@code tags}) when it does not
     * exist: in the transaction that registers its first version, so it is never seen without one.
     */
    public static long lockOrCreate(Connection c, ModelName name, String description, Map<String, String> tags)
            throws SQLException {
        insert(c, name, description, tags);
        return lock(c, name);
    }

    private static Optional<Long> selectId(Connection c, ModelName name, String suffix) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("SELECT id FROM model WHERE namespace = ? AND name = ?" + suffix)) {
            s.setString(1, name.namespace());
            s.setString(2, name.name());
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? Optional.of(rs.getLong(1)) : Optional.empty();
            }
        }
    }

    /**
     * Models whose name or description contains {@code query} (case-insensitive) and that carry every tag of
     * {@code tags}, by name.
     */
    /** Models matching {@code query} and {@code tags}, among those {@code grants} cover (null: all), by name. */
    public static RowPage<ModelRow> search(Connection c, String query, Map<String, String> tags, List<String> grants,
                                           int page, int pageSize) throws SQLException {
        String where = " WHERE (m.namespace || '/' || m.name || ' ' || m.description) ILIKE ? AND m.tags @> ?::jsonb"
                + " AND (?::boolean OR m.namespace || '/*' = ANY(?) OR m.namespace || '/' || m.name = ANY(?))";
        String pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%";
        Object[] covered = grants == null ? new Object[0] : grants.toArray();
        long total;
        try (PreparedStatement s = c.prepareStatement("SELECT count(*) FROM model m" + where)) {
            bind(c, s, pattern, tags, grants == null, covered);
            try (ResultSet rs = s.executeQuery()) {
                rs.next();
                total = rs.getLong(1);
            }
        }
        List<ModelRow> items = new ArrayList<>();
        try (PreparedStatement s = c.prepareStatement(VIEW + where + " ORDER BY m.namespace, m.name LIMIT ? OFFSET ?")) {
            bind(c, s, pattern, tags, grants == null, covered);
            s.setInt(6, pageSize);
            s.setLong(7, (long) (page - 1) * pageSize);
            try (ResultSet rs = s.executeQuery()) {
                while (rs.next()) {
                    items.add(view(rs));
                }
            }
        }
        return new RowPage<>(items, page, pageSize, total);
    }

    private static void bind(Connection c, PreparedStatement s, String pattern, Map<String, String> tags, boolean all,
                             Object[] grants) throws SQLException {
        s.setString(1, pattern);
        s.setString(2, Json.write(tags));
        s.setBoolean(3, all);
        s.setArray(4, c.createArrayOf("text", grants));
        s.setArray(5, c.createArrayOf("text", grants));
    }

    public static void update(Connection c, long id, String description, Map<String, String> tags) throws SQLException {
        try (PreparedStatement s = c.prepareStatement(
                "UPDATE model SET description = ?, tags = ?::jsonb, updated_at = now() WHERE id = ?")) {
            s.setString(1, description);
            s.setString(2, Json.write(tags));
            s.setLong(3, id);
            s.executeUpdate();
        }
    }

    /** Deletes a model that has no versions (and so no aliases); its alias history goes with it. */
    public static void delete(Connection c, long id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("DELETE FROM alias_move WHERE model_id = ?")) {
            s.setLong(1, id);
            s.executeUpdate();
        }
        try (PreparedStatement s = c.prepareStatement("DELETE FROM model WHERE id = ?")) {
            s.setLong(1, id);
            s.executeUpdate();
        }
    }

    /**
     * Takes the model's next version number. Call with the model's row locked ({@link #lock}): the increment
     * commits or rolls back with the version that uses it, so numbers have no gaps and are never reused.
     */
    public static int takeVersionNumber(Connection c, long id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement(
                "UPDATE model SET next_version = next_version + 1, updated_at = now() WHERE id = ? RETURNING next_version - 1")) {
            s.setLong(1, id);
            try (ResultSet rs = s.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }

    private static ModelRow view(ResultSet rs) throws SQLException {
        int latest = rs.getInt("latest");
        Integer latestVersion = rs.wasNull() ? null : latest;
        return new ModelRow(rs.getString("namespace") + "/" + rs.getString("name"), rs.getString("namespace"),
                rs.getString("description"), Json.read(rs.getString("tags"), Json.STRING_MAP), latestVersion,
                rs.getLong("versions"), rs.getObject("created_at", OffsetDateTime.class),
                rs.getObject("updated_at", OffsetDateTime.class));
    }

    private static RegistryException notFound(ModelName name) {
        return RegistryException.notFound("No model " + name);
    }
}
