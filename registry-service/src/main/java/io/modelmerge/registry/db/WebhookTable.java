package io.modelmerge.registry.db;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/** The {@code webhook} and {@code webhook_delivery} tables. */
public final class WebhookTable {
    private static final String DELIVERY = "id, webhook_id, event, payload, state, attempts, next_attempt_at,"
            + " last_status, last_error, replay_of, created_at, delivered_at";

    private WebhookTable() {
    }

    public static WebhookRow insert(Connection c, String id, String namespace, String url, List<String> events,
                                    String secret, String createdBy) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("INSERT INTO webhook (id, namespace, url, events, secret,"
                + " created_by) VALUES (?, ?, ?, ?, ?, ?) RETURNING *")) {
            s.setString(1, id);
            s.setString(2, namespace);
            s.setString(3, url);
            s.setArray(4, c.createArrayOf("text", events.toArray()));
            s.setString(5, secret);
            s.setString(6, createdBy);
            try (ResultSet rs = s.executeQuery()) {
                rs.next();
                return webhook(rs);
            }
        }
    }

    public static Optional<WebhookRow> find(Connection c, String id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("SELECT * FROM webhook WHERE id = ?")) {
            s.setString(1, id);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? Optional.of(webhook(rs)) : Optional.empty();
            }
        }
    }

    public static List<WebhookRow> inNamespace(Connection c, String namespace) throws SQLException {
        List<WebhookRow> rows = new ArrayList<>();
        try (PreparedStatement s = c.prepareStatement("SELECT * FROM webhook WHERE namespace = ? ORDER BY created_at, id")) {
            s.setString(1, namespace);
            try (ResultSet rs = s.executeQuery()) {
                while (rs.next()) {
                    rows.add(webhook(rs));
                }
            }
        }
        return rows;
    }

    public static boolean delete(Connection c, String id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("DELETE FROM webhook WHERE id = ?")) {
            s.setString(1, id);
            return s.executeUpdate() == 1;
        }
    }

    /** A delivery of {@code event} to every webhook of {@code namespace} that takes it; how many. */
    public static int enqueue(Connection c, String namespace, String event, String payload) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("INSERT INTO webhook_delivery (webhook_id, event, payload)"
                + " SELECT id, ?, ? FROM webhook WHERE namespace = ? AND ? = ANY(events)")) {
            s.setString(1, event);
            s.setString(2, payload);
            s.setString(3, namespace);
            s.setString(4, event);
            return s.executeUpdate();
        }
    }

    /** A new delivery of what delivery {@code id} carried, due now. */
    public static Optional<WebhookRow.Delivery> replay(Connection c, long id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("INSERT INTO webhook_delivery (webhook_id, event, payload,"
                + " replay_of) SELECT webhook_id, event, payload, id FROM webhook_delivery WHERE id = ? RETURNING "
                + DELIVERY)) {
            s.setLong(1, id);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? Optional.of(delivery(rs)) : Optional.empty();
            }
        }
    }

    public static Optional<WebhookRow.Delivery> delivery(Connection c, long id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("SELECT " + DELIVERY + " FROM webhook_delivery WHERE id = ?")) {
            s.setLong(1, id);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? Optional.of(delivery(rs)) : Optional.empty();
            }
        }
    }

    /** The deliveries of webhook {@code id}, newest first, at most {@code limit}. */
    public static List<WebhookRow.Delivery> deliveries(Connection c, String id, int limit) throws SQLException {
        List<WebhookRow.Delivery> rows = new ArrayList<>();
        try (PreparedStatement s = c.prepareStatement("SELECT " + DELIVERY + " FROM webhook_delivery"
                + " WHERE webhook_id = ? ORDER BY id DESC LIMIT ?")) {
            s.setString(1, id);
            s.setInt(2, limit);
            try (ResultSet rs = s.executeQuery()) {
                while (rs.next()) {
                    rows.add(delivery(rs));
                }
            }
        }
        return rows;
    }

    /**
     * Up to {@code limit} due deliveries, claimed for {@code claim}: they are not due again until then, so no other
     * replica (or round) takes them while this one delivers, and a replica that dies delivering leaves them due
     * again afterwards (at least once: a receiver tells repeats by X-Modelmerge-Delivery).
     */
    public static List<Due> claimDue(Connection c, int limit, Duration claim) throws SQLException {
        List<Due> due = new ArrayList<>();
        try (PreparedStatement s = c.prepareStatement("UPDATE webhook_delivery d SET next_attempt_at = now() + ?::interval"
                + " FROM webhook w WHERE w.id = d.webhook_id AND d.id IN (SELECT id FROM webhook_delivery"
                + " WHERE state = 'PENDING' AND next_attempt_at <= now() ORDER BY next_attempt_at, id LIMIT ?"
                + " FOR UPDATE SKIP LOCKED) RETURNING d.id, d.event, d.payload, d.attempts, w.url, w.secret")) {
            s.setString(1, claim.toMillis() + " milliseconds");
            s.setInt(2, limit);
            try (ResultSet rs = s.executeQuery()) {
                while (rs.next()) {
                    due.add(new Due(rs.getLong("id"), rs.getString("event"), rs.getString("payload"),
                            rs.getInt("attempts"), rs.getString("url"), rs.getString("secret")));
                }
            }
        }
        due.sort(Comparator.comparingLong(Due::id));
        return due;
    }

    /** A delivery to make: what, where, and with which secret. */
    public record Due(long id, String event, String payload, int attempts, String url, String secret) {
    }

    public static void delivered(Connection c, long id, int status) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("UPDATE webhook_delivery SET state = 'DELIVERED',"
                + " attempts = attempts + 1, last_status = ?, last_error = NULL, delivered_at = now() WHERE id = ?")) {
            s.setInt(1, status);
            s.setLong(2, id);
            s.executeUpdate();
        }
    }

    /** An attempt that failed: tried again after {@code retryIn}, or FAILED for good when {@code retryIn} is null. */
    public static void attemptFailed(Connection c, long id, Integer status, String error, Duration retryIn)
            throws SQLException {
        try (PreparedStatement s = c.prepareStatement("UPDATE webhook_delivery SET attempts = attempts + 1,"
                + " last_status = ?, last_error = ?, state = CASE WHEN ?::interval IS NULL THEN 'FAILED' ELSE state END,"
                + " next_attempt_at = now() + coalesce(?::interval, interval '0') WHERE id = ?")) {
            if (status == null) {
                s.setNull(1, Types.INTEGER);
            } else {
                s.setInt(1, status);
            }
            s.setString(2, error);
            String interval = retryIn == null ? null : retryIn.toMillis() + " milliseconds";
            s.setString(3, interval);
            s.setString(4, interval);
            s.setLong(5, id);
            s.executeUpdate();
        }
    }

    private static WebhookRow webhook(ResultSet rs) throws SQLException {
        return new WebhookRow(rs.getString("id"), rs.getString("namespace"), rs.getString("url"),
                SqlArrays.strings(rs.getArray("events")), rs.getString("secret"), rs.getString("created_by"),
                rs.getObject("created_at", OffsetDateTime.class));
    }

    private static WebhookRow.Delivery delivery(ResultSet rs) throws SQLException {
        int status = rs.getInt("last_status");
        Integer lastStatus = rs.wasNull() ? null : status;
        long replayOf = rs.getLong("replay_of");
        Long replay = rs.wasNull() ? null : replayOf;
        return new WebhookRow.Delivery(rs.getLong("id"), rs.getString("webhook_id"), rs.getString("event"),
                rs.getString("payload"), rs.getString("state"), rs.getInt("attempts"),
                rs.getObject("next_attempt_at", OffsetDateTime.class), lastStatus, rs.getString("last_error"), replay,
                rs.getObject("created_at", OffsetDateTime.class), rs.getObject("delivered_at", OffsetDateTime.class));
    }

}
