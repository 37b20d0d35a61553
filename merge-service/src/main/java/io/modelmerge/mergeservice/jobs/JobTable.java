package io.modelmerge.mergeservice.jobs;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;

/** The {@code merge_job} table: the queue, leases, and outcomes. */
public final class JobTable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final TypeReference<Map<String, String>> STRING_MAP = new TypeReference<>() {
    };
    private static final TypeReference<Map<String, Pin>> PIN_MAP = new TypeReference<>() {
    };

    private JobTable() {
    }

    /**
     * Queues a job, or returns the job already queued under the same idempotency key (whose digest the caller
     * compares with {@code digest}).
     */
    public static MergeJob insert(Connection c, UUID id, JobRequest r, String digest, int maxAttempts,
                                  MergeJob.Submitter submitter) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                INSERT INTO merge_job (id, idempotency_key, state, recipe, output_model, output_alias, output_tags,
                                       output_description, seed, memory_bytes, shard_size_bytes, out_dtype, priority,
                                       pinned, max_attempts, request_digest, strict, submitted_by, submitter_token)
                VALUES (?, ?, 'QUEUED', ?, ?, ?, ?::jsonb, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?, ?, ?, ?)
                ON CONFLICT (idempotency_key) DO NOTHING""")) {
            s.setObject(1, id);
            s.setString(2, r.idempotencyKey().isEmpty() ? null : r.idempotencyKey());
            s.setString(3, r.recipe());
            s.setString(4, r.outputModel());
            s.setString(5, r.outputAlias());
            s.setString(6, write(r.outputTags()));
            s.setString(7, r.outputDescription());
            s.setLong(8, r.seed());
            s.setLong(9, r.memoryBytes());
            s.setLong(10, r.shardSizeBytes());
            s.setString(11, r.outDtype());
            s.setInt(12, r.priority());
            s.setString(13, write(r.pinned()));
            s.setInt(14, maxAttempts);
            s.setString(15, digest);
            s.setBoolean(16, r.strict());
            s.setString(17, submitter.name());
            s.setString(18, submitter.tokenId());
            if (s.executeUpdate() == 1) {
                return find(c, id).orElseThrow();
            }
        }
        return findByKey(c, r.idempotencyKey()).orElseThrow();
    }

    public static Optional<MergeJob> findByKey(Connection c, String idempotencyKey) throws SQLException {
        return select(c, "WHERE idempotency_key = ?", s -> s.setString(1, idempotencyKey)).stream().findFirst();
    }

    public static Optional<MergeJob> find(Connection c, UUID id) throws SQLException {
        return select(c, "WHERE id = ?", s -> s.setObject(1, id)).stream().findFirst();
    }

    /** Jobs newest first, optionally of one state and one output model. */
    /**
     * Jobs newest first, of {@code state} and {@code outputModel} where given, among the output models that
     * {@code grants} cover ({@code team/*}, {@code team/model}; empty: all).
     */
    public static List<MergeJob> list(Connection c, Optional<JobStatus> state, Optional<String> outputModel,
                                      Optional<List<String>> grants, int limit, long offset) throws SQLException {
        return select(c, "WHERE (?::text IS NULL OR state = ?) AND (?::text IS NULL OR output_model = ?)"
                + " AND (?::boolean OR split_part(output_model, '/', 1) || '/*' = ANY(?) OR output_model = ANY(?))"
                + " ORDER BY created_at DESC, id LIMIT ? OFFSET ?", s -> {
                    String st = state.map(Enum::name).orElse(null);
                    s.setString(1, st);
                    s.setString(2, st);
                    s.setString(3, outputModel.orElse(null));
                    s.setString(4, outputModel.orElse(null));
                    Object[] covered = grants.map(List::toArray).orElse(new Object[0]);
                    s.setBoolean(5, grants.isEmpty());
                    s.setArray(6, c.createArrayOf("text", covered));
                    s.setArray(7, c.createArrayOf("text", covered));
                    s.setInt(8, limit);
                    s.setLong(9, offset);
                });
    }

    /**
     * Claims the most urgent queued job (once its {@code not_before}, if any, has passed), or a running one whose
     * lease expired (its worker died), for {@code owner}; {@code SKIP LOCKED} lets replicas claim side by side
     * without waiting on each other.
     */
    public static Optional<UUID> claim(Connection c, String owner, Duration lease) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                UPDATE merge_job SET state = 'RUNNING', attempts = attempts + 1, lease_owner = ?,
                       lease_expires_at = now() + make_interval(secs => ?), started_at = coalesce(started_at, now()),
                       progress = '{}'::jsonb
                WHERE id = (SELECT id FROM merge_job
                            WHERE (state = 'QUEUED' AND (not_before IS NULL OR not_before <= now()))
                               OR (state = 'RUNNING' AND lease_expires_at < now())
                            ORDER BY priority DESC, created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING id""")) {
            s.setString(1, owner);
            s.setDouble(2, lease.toMillis() / 1000.0);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? Optional.of(rs.getObject(1, UUID.class)) : Optional.empty();
            }
        }
    }

    /**
     * Extends {@code owner}'s lease and stores progress. Empty when the lease is lost (expired and claimed by
     * another worker); otherwise whether a cancel was asked for.
     */
    public static Optional<Boolean> renew(Connection c, UUID id, String owner, Duration lease, JobProgress progress)
            throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                UPDATE merge_job SET lease_expires_at = now() + make_interval(secs => ?), progress = ?::jsonb
                WHERE id = ? AND lease_owner = ? AND state = 'RUNNING' RETURNING cancel_requested""")) {
            s.setDouble(1, lease.toMillis() / 1000.0);
            s.setString(2, write(progress));
            s.setObject(3, id);
            s.setString(4, owner);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? Optional.of(rs.getBoolean(1)) : Optional.empty();
            }
        }
    }

    /**
     * Ends a running job held by {@code owner}; false if it no longer holds it. {@code cleaned}: its partial
     * uploads are known to be gone (or it has none).
     */
    public static boolean finish(Connection c, UUID id, String owner, JobStatus state, String error, String result,
                                 JobProgress progress, boolean cleaned) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                UPDATE merge_job SET state = ?, error = ?, result_version = ?, progress = ?::jsonb, finished_at = now(),
                       lease_owner = NULL, lease_expires_at = NULL, outputs_cleaned = ?
                WHERE id = ? AND lease_owner = ? AND state = 'RUNNING'""")) {
            s.setString(1, state.name());
            s.setString(2, error);
            s.setString(3, result);
            s.setString(4, write(progress));
            s.setBoolean(5, cleaned);
            s.setObject(6, id);
            s.setString(7, owner);
            return s.executeUpdate() == 1;
        }
    }

    /**
     * Gives a running job back to the queue because this replica is stopping: the attempt is given back too, as
     * the job did nothing wrong.
     */
    public static void release(Connection c, UUID id, String owner) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                UPDATE merge_job SET state = 'QUEUED', lease_owner = NULL, lease_expires_at = NULL,
                       attempts = greatest(attempts - 1, 0)
                WHERE id = ? AND lease_owner = ? AND state = 'RUNNING'""")) {
            s.setObject(1, id);
            s.setString(2, owner);
            s.executeUpdate();
        }
    }

    /**
     * Queues a running job again after an attempt that failed on something passing (the registry or the
     * storage unreachable): claimable after {@code delay}, with the attempt counted and its error kept.
     */
    public static boolean retryLater(Connection c, UUID id, String owner, String error, Duration delay)
            throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                UPDATE merge_job SET state = 'QUEUED', lease_owner = NULL, lease_expires_at = NULL, error = ?,
                       not_before = now() + make_interval(secs => ?)
                WHERE id = ? AND lease_owner = ? AND state = 'RUNNING'""")) {
            s.setString(1, error);
            s.setDouble(2, delay.toMillis() / 1000.0);
            s.setObject(3, id);
            s.setString(4, owner);
            return s.executeUpdate() == 1;
        }
    }

    /** The model-wide statistic a split job's coordinator stored, if any. */
    public static Optional<double[]> statistics(Connection c, UUID id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("SELECT statistics FROM merge_job WHERE id = ?")) {
            s.setObject(1, id);
            try (ResultSet rs = s.executeQuery()) {
                String json = rs.next() ? rs.getString(1) : null;
                if (json == null) {
                    return Optional.empty();
                }
                // stored as strings: a threshold may be infinite, which JSON numbers cannot hold
                return Optional.of(read(json, new TypeReference<List<String>>() {
                }).stream().mapToDouble(Double::parseDouble).toArray());
            }
        }
    }

    /** Stores a split job's model-wide statistic, computed once by its coordinator {@code owner}. */
    public static boolean storeStatistics(Connection c, UUID id, String owner, double[] statistics) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                UPDATE merge_job SET statistics = ?::jsonb WHERE id = ? AND lease_owner = ? AND state = 'RUNNING'""")) {
            s.setString(1, write(java.util.Arrays.stream(statistics).mapToObj(Double::toString).toList()));
            s.setObject(2, id);
            s.setString(3, owner);
            return s.executeUpdate() == 1;
        }
    }

    /** Finished jobs that did not succeed and whose partial uploads may still exist. */
    public static List<MergeJob> uncleaned(Connection c) throws SQLException {
        return select(c, "WHERE state IN ('FAILED', 'CANCELLED') AND NOT outputs_cleaned", s -> { });
    }

    public static void markCleaned(Connection c, UUID id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("UPDATE merge_job SET outputs_cleaned = true WHERE id = ?")) {
            s.setObject(1, id);
            s.executeUpdate();
        }
    }

    /** Whether a worker holds job {@code id} now: running with an unexpired lease. */
    public static boolean held(Connection c, UUID id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement(
                "SELECT 1 FROM merge_job WHERE id = ? AND state = 'RUNNING' AND lease_expires_at >= now()")) {
            s.setObject(1, id);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next();
            }
        }
    }

    /**
     * Cancels a queued job at once (a queued job holds no uploads: every attempt that ended deleted its own);
     * marks a running one for its worker to stop. Finished jobs stay as they are.
     */
    public static void cancel(Connection c, UUID id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                UPDATE merge_job SET
                       finished_at = CASE WHEN state = 'QUEUED' THEN now() ELSE finished_at END,
                       cancel_requested = cancel_requested OR state IN ('QUEUED', 'RUNNING'),
                       outputs_cleaned = outputs_cleaned OR state = 'QUEUED',
                       state = CASE WHEN state = 'QUEUED' THEN 'CANCELLED' ELSE state END
                WHERE id = ?""")) {
            s.setObject(1, id);
            s.executeUpdate();
        }
    }

    @FunctionalInterface
    private interface Binder {
        void bind(PreparedStatement s) throws SQLException;
    }

    private static List<MergeJob> select(Connection c, String where, Binder binder) throws SQLException {
        List<MergeJob> jobs = new ArrayList<>();
        try (PreparedStatement s = c.prepareStatement("SELECT * FROM merge_job " + where)) {
            binder.bind(s);
            try (ResultSet rs = s.executeQuery()) {
                while (rs.next()) {
                    jobs.add(job(rs));
                }
            }
        }
        return jobs;
    }

    private static MergeJob job(ResultSet rs) throws SQLException {
        String key = rs.getString("idempotency_key");
        JobRequest request = new JobRequest(rs.getString("recipe"), rs.getString("output_model"),
                rs.getString("output_alias"), read(rs.getString("output_tags"), STRING_MAP),
                rs.getString("output_description"), rs.getLong("seed"), rs.getLong("memory_bytes"),
                rs.getLong("shard_size_bytes"), rs.getString("out_dtype"), rs.getInt("priority"),
                rs.getBoolean("strict"), key == null ? "" : key, read(rs.getString("pinned"), PIN_MAP));
        String progress = rs.getString("progress");
        return new MergeJob(rs.getObject("id", UUID.class), request, rs.getString("request_digest"),
                JobStatus.valueOf(rs.getString("state")),
                rs.getInt("attempts"), rs.getInt("max_attempts"), rs.getBoolean("cancel_requested"),
                rs.getString("error"), rs.getString("result_version"),
                progress.equals("{}") ? JobProgress.NONE : read(progress, new TypeReference<JobProgress>() {
                }), rs.getObject("created_at", OffsetDateTime.class), rs.getObject("started_at", OffsetDateTime.class),
                rs.getObject("finished_at", OffsetDateTime.class),
                new MergeJob.Submitter(rs.getString("submitted_by"), rs.getString("submitter_token")));
    }

    private static String write(Object value) {
        try {
            return JSON.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(e);
        }
    }

    private static <T> T read(String json, TypeReference<T> type) {
        try {
            return JSON.readValue(json, type);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("Stored JSON does not parse: " + e.getMessage(), e);
        }
    }
}
