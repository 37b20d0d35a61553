package io.modelmerge.registry.db;

import io.modelmerge.registry.content.ContentSummary;
import io.modelmerge.registry.content.StoredFile;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** The {@code model_version} table with its files and parents. */
public final class VersionTable {
    private VersionTable() {
    }

    /** Inserts a READY version numbered {@code number}, with its files and parents; returns its row id. */
    public static long insert(Connection c, long modelId, int number, NewVersion v) throws SQLException {
        long id;
        try (PreparedStatement s = c.prepareStatement("""
                INSERT INTO model_version (model_id, version, status, format, storage_uri, content_digest, summary,
                                           recipe, parameters, metrics, tags, description, created_by)
                VALUES (?, ?, 'READY', ?, ?, ?, ?::jsonb, ?, ?::jsonb, ?::jsonb, ?::jsonb, ?, ?) RETURNING id""")) {
            s.setLong(1, modelId);
            s.setInt(2, number);
            s.setString(3, v.format().wire());
            s.setString(4, v.content().storageUri());
            s.setString(5, v.content().contentDigest());
            s.setString(6, Json.write(v.content().summary()));
            s.setString(7, v.recipe());
            s.setString(8, Json.write(v.parameters()));
            s.setString(9, Json.write(v.metrics()));
            s.setString(10, Json.write(v.tags()));
            s.setString(11, v.description());
            s.setString(12, v.createdBy());
            try (ResultSet rs = s.executeQuery()) {
                rs.next();
                id = rs.getLong(1);
            }
        }
        try (PreparedStatement s = c.prepareStatement(
                "INSERT INTO version_file (version_id, path, size, sha256, crc32c) VALUES (?, ?, ?, ?, ?)")) {
            for (StoredFile f : v.content().files()) {
                s.setLong(1, id);
                s.setString(2, f.path());
                s.setLong(3, f.size());
                s.setString(4, f.sha256());
                s.setString(5, f.crc32c());
                s.addBatch();
            }
            s.executeBatch();
        }
        try (PreparedStatement s = c.prepareStatement(
                "INSERT INTO version_parent (child_id, parent_id, relation) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")) {
            for (NewVersion.Parent p : v.parents()) {
                s.setLong(1, id);
                s.setLong(2, p.versionId());
                s.setString(3, p.relation().wire());
                s.addBatch();
            }
            s.executeBatch();
        }
        return id;
    }

    /** The row id of version {@code number} of the model. */
    public static Optional<Long> idOf(Connection c, long modelId, int number) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("SELECT id FROM model_version WHERE model_id = ? AND version = ?")) {
            s.setLong(1, modelId);
            s.setInt(2, number);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? Optional.of(rs.getLong(1)) : Optional.empty();
            }
        }
    }

    /** The row id of the model's version with this content. */
    public static Optional<Long> idByContent(Connection c, long modelId, String contentDigest) throws SQLException {
        try (PreparedStatement s = c.prepareStatement(
                "SELECT id FROM model_version WHERE model_id = ? AND content_digest = ?")) {
            s.setLong(1, modelId);
            s.setString(2, contentDigest);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? Optional.of(rs.getLong(1)) : Optional.empty();
            }
        }
    }

    /** Version row {@code id} with its files, parents and aliases, in one query. */
    public static VersionRow view(Connection c, long id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                SELECT v.*, m.namespace || '/' || m.name AS model_name,
                       (SELECT coalesce(json_agg(json_build_object('path', f.path, 'size', f.size, 'sha256', f.sha256,
                                                                   'crc32c', f.crc32c) ORDER BY f.path), '[]')
                        FROM version_file f WHERE f.version_id = v.id) AS files,
                       (SELECT coalesce(json_agg(json_build_object('model', pm.namespace || '/' || pm.name,
                                                                   'version', pv.version, 'relation', p.relation)
                                                 ORDER BY pm.namespace, pm.name, pv.version, p.relation), '[]')
                        FROM version_parent p JOIN model_version pv ON pv.id = p.parent_id
                        JOIN model pm ON pm.id = pv.model_id WHERE p.child_id = v.id) AS parents,
                       (SELECT coalesce(json_agg(a.name ORDER BY a.name), '[]') FROM alias a
                        WHERE a.version_id = v.id) AS aliases
                FROM model_version v JOIN model m ON m.id = v.model_id WHERE v.id = ?""")) {
            s.setLong(1, id);
            try (ResultSet rs = s.executeQuery()) {
                if (!rs.next()) {
                    throw new IllegalStateException("version row " + id + " vanished");
                }
                String model = rs.getString("model_name");
                int version = rs.getInt("version");
                List<FileRow> files = Json.read(rs.getString("files"), Json.OBJECT_LIST).stream()
                        .map(f -> new FileRow((String) f.get("path"), ((Number) f.get("size")).longValue(),
                                (String) f.get("sha256"), (String) f.get("crc32c"), null)).toList();
                List<ParentRow> parents = Json.read(rs.getString("parents"), Json.OBJECT_LIST).stream()
                        .map(p -> {
                            String parentModel = (String) p.get("model");
                            int parentVersion = ((Number) p.get("version")).intValue();
                            return new ParentRow(parentModel + "@" + parentVersion, parentModel, parentVersion,
                                    (String) p.get("relation"));
                        }).toList();
                return new VersionRow(model + "@" + version, model, version, rs.getString("status"),
                        rs.getString("format"), rs.getString("storage_uri"), rs.getString("content_digest"),
                        Json.read(rs.getString("summary"), ContentSummary.class), files, parents,
                        rs.getString("recipe"), Json.read(rs.getString("parameters"), Json.OBJECT_MAP),
                        Json.read(rs.getString("metrics"), Json.NUMBER_MAP),
                        Json.read(rs.getString("tags"), Json.STRING_MAP), rs.getString("description"),
                        Json.read(rs.getString("aliases"), Json.STRING_LIST), rs.getString("created_by"),
                        rs.getObject("created_at", OffsetDateTime.class));
            }
        }
    }

    /** The model's versions, newest first. */
    public static RowPage<VersionRow> list(Connection c, long modelId, int page, int pageSize) throws SQLException {
        long total;
        try (PreparedStatement s = c.prepareStatement("SELECT count(*) FROM model_version WHERE model_id = ?")) {
            s.setLong(1, modelId);
            try (ResultSet rs = s.executeQuery()) {
                rs.next();
                total = rs.getLong(1);
            }
        }
        List<Long> ids = new ArrayList<>();
        try (PreparedStatement s = c.prepareStatement(
                "SELECT id FROM model_version WHERE model_id = ? ORDER BY version DESC LIMIT ? OFFSET ?")) {
            s.setLong(1, modelId);
            s.setInt(2, pageSize);
            s.setLong(3, (long) (page - 1) * pageSize);
            try (ResultSet rs = s.executeQuery()) {
                while (rs.next()) {
                    ids.add(rs.getLong(1));
                }
            }
        }
        List<VersionRow> items = new ArrayList<>();
        for (long id : ids) {
            items.add(view(c, id));
        }
        return new RowPage<>(items, page, pageSize, total);
    }

    /** The versions made from version {@code id}, with the relation, as edges child → this version. */
    public static List<Lineage.Edge> children(Connection c, long id) throws SQLException {
        List<Lineage.Edge> edges = new ArrayList<>();
        try (PreparedStatement s = c.prepareStatement("""
                SELECT cm.namespace || '/' || cm.name || '@' || cv.version, pm.namespace || '/' || pm.name || '@' || pv.version,
                       p.relation
                FROM version_parent p
                JOIN model_version cv ON cv.id = p.child_id JOIN model cm ON cm.id = cv.model_id
                JOIN model_version pv ON pv.id = p.parent_id JOIN model pm ON pm.id = pv.model_id
                WHERE p.parent_id = ? ORDER BY 1, 3""")) {
            s.setLong(1, id);
            try (ResultSet rs = s.executeQuery()) {
                while (rs.next()) {
                    edges.add(new Lineage.Edge(rs.getString(1), rs.getString(2), rs.getString(3)));
                }
            }
        }
        return edges;
    }

    /**
     * The ancestors of version {@code id} (whose ref is {@code rootRef}) up to {@code depth} generations, with
     * every edge between them.
     */
    public static Lineage lineage(Connection c, long id, String rootRef, int depth) throws SQLException {
        List<Lineage.Edge> edges = new ArrayList<>();
        List<Lineage.Node> nodes = new ArrayList<>();
        try (PreparedStatement s = c.prepareStatement("""
                WITH RECURSIVE up (child_id, parent_id, relation, depth) AS (
                    SELECT child_id, parent_id, relation, 1 FROM version_parent WHERE child_id = ?
                    UNION
                    SELECT p.child_id, p.parent_id, p.relation, up.depth + 1
                    FROM version_parent p JOIN up ON p.child_id = up.parent_id WHERE up.depth < ?
                ),
                edges AS (SELECT DISTINCT child_id, parent_id, relation FROM up)
                SELECT cm.namespace || '/' || cm.name || '@' || cv.version, pm.namespace || '/' || pm.name || '@' || pv.version,
                       e.relation
                FROM edges e
                JOIN model_version cv ON cv.id = e.child_id JOIN model cm ON cm.id = cv.model_id
                JOIN model_version pv ON pv.id = e.parent_id JOIN model pm ON pm.id = pv.model_id
                ORDER BY 1, 2, 3""")) {
            s.setLong(1, id);
            s.setInt(2, depth);
            try (ResultSet rs = s.executeQuery()) {
                while (rs.next()) {
                    edges.add(new Lineage.Edge(rs.getString(1), rs.getString(2), rs.getString(3)));
                }
            }
        }
        try (PreparedStatement s = c.prepareStatement("""
                WITH RECURSIVE up (version_id, depth) AS (
                    SELECT ?::bigint, 0
                    UNION
                    SELECT p.parent_id, up.depth + 1 FROM version_parent p JOIN up ON p.child_id = up.version_id
                    WHERE up.depth < ?
                )
                SELECT DISTINCT m.namespace || '/' || m.name AS model, v.version, v.format, v.status, v.created_at
                FROM up JOIN model_version v ON v.id = up.version_id JOIN model m ON m.id = v.model_id
                ORDER BY 1, 2""")) {
            s.setLong(1, id);
            s.setInt(2, depth);
            try (ResultSet rs = s.executeQuery()) {
                while (rs.next()) {
                    String model = rs.getString(1);
                    nodes.add(new Lineage.Node(model + "@" + rs.getInt(2), model, rs.getInt(2), rs.getString(3),
                            rs.getString(4), rs.getObject(5, OffsetDateTime.class)));
                }
            }
        }
        return new Lineage(rootRef, depth, nodes, edges);
    }
}
