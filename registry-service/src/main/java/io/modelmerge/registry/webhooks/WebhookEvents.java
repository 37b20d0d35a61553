package io.modelmerge.registry.webhooks;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.modelmerge.registry.db.WebhookTable;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The events webhooks take, queued in the transaction that makes them (so an event is delivered if and only if
 * what it says happened): {@code version.ready}, {@code alias.moved}, {@code job.finished}.
 */
public final class WebhookEvents {
    public static final String VERSION_READY = "version.ready";
    public static final String ALIAS_MOVED = "alias.moved";
    public static final String JOB_FINISHED = "job.finished";
    public static final List<String> ALL = List.of(VERSION_READY, ALIAS_MOVED, JOB_FINISHED);

    private static final ObjectMapper JSON = new ObjectMapper();

    private WebhookEvents() {
    }

    public static void versionReady(Connection c, String model, int version, String createdBy) throws SQLException {
        Map<String, Object> body = body(VERSION_READY, model);
        body.put("version", version);
        body.put("ref", model + "@" + version);
        body.put("created_by", createdBy);
        queue(c, model, body);
    }

    /** {@code to} null: the alias was deleted. */
    public static void aliasMoved(Connection c, String model, String alias, Integer from, Integer to, String movedBy)
            throws SQLException {
        Map<String, Object> body = body(ALIAS_MOVED, model);
        body.put("alias", alias);
        body.put("from_version", from);
        body.put("to_version", to);
        body.put("moved_by", movedBy);
        queue(c, model, body);
    }

    /** What the merge service reported of a job that ended. */
    public static void jobFinished(Connection c, String model, Map<String, Object> job, String reportedBy)
            throws SQLException {
        Map<String, Object> body = body(JOB_FINISHED, model);
        body.put("job", job);
        body.put("reported_by", reportedBy);
        queue(c, model, body);
    }

    private static Map<String, Object> body(String event, String model) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("event", event);
        body.put("at", OffsetDateTime.now(ZoneOffset.UTC).toString());
        body.put("model", model);
        return body;
    }

    private static void queue(Connection c, String model, Map<String, Object> body) throws SQLException {
        try {
            WebhookTable.enqueue(c, model.substring(0, model.indexOf('/')), (String) body.get("event"),
                    JSON.writeValueAsString(body));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
