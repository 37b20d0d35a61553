package io.modelmerge.mergeservice.jobs;

import io.modelmerge.engine.exec.SplitPlan;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

/** The {@code merge_task} table: a split job's shards, claimed and leased like jobs. */
public final class TaskTable {
    private TaskTable() {
    }

    /** Queues a task per shard of {@code plan}; the tasks an earlier attempt queued stay as they are. */
    public static void insert(Connection c, UUID job, SplitPlan plan) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                INSERT INTO merge_task (job_id, shard, file, state, bytes_total) VALUES (?, ?, ?, 'QUEUED', ?)
                ON CONFLICT (job_id, shard) DO NOTHING""")) {
            for (SplitPlan.Shard shard : plan.shards()) {
                s.setObject(1, job);
                s.setInt(2, shard.index());
                s.setString(3, shard.file());
                s.setLong(4, shard.bytes());
                s.addBatch();
            }
            s.executeBatch();
        }
    }

    /**
     * Claims a queued task, or a running one whose lease expired, of a running job that no one asked to cancel
     * (of {@code job} alone, if given) for {@code owner}; a task that has had the job's {@code max_attempts} is
     * left for the coordinator to fail the job with.
     */
    public static Optional<ShardTask> claim(Connection c, String owner, Duration lease, Optional<UUID> job)
            throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                UPDATE merge_task t SET state = 'RUNNING', attempts = t.attempts + 1, lease_owner = ?,
                       lease_expires_at = now() + make_interval(secs => ?), bytes_done = 0
                WHERE (t.job_id, t.shard) = (
                    SELECT k.job_id, k.shard FROM merge_task k JOIN merge_job j ON j.id = k.job_id
                    WHERE (k.state = 'QUEUED' OR (k.state = 'RUNNING' AND k.lease_expires_at < now()))
                      AND k.attempts < j.max_attempts AND j.state = 'RUNNING' AND NOT j.cancel_requested
                      AND NOT EXISTS (SELECT 1 FROM merge_task x WHERE x.job_id = k.job_id AND x.state = 'FAILED') AND (?::uuid IS NULL OR k.job_id = ?::uuid)
                    ORDER BY j.priority DESC, j.created_at, k.shard LIMIT 1 FOR UPDATE OF k SKIP LOCKED)
                RETURNING t.*, true AS held""")) {
            s.setString(1, owner);
            s.setDouble(2, lease.toMillis() / 1000.0);
            s.setObject(3, job.orElse(null));
            s.setObject(4, job.orElse(null));
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? Optional.of(task(rs)) : Optional.empty();
            }
        }
    }

    /**
     * Extends {@code owner}'s lease on a task and stores its progress. Empty when the lease is lost; otherwise
     * whether its job is ending (a cancel was asked for, the job is no longer running, or one of its tasks failed).
     */
    public static Optional<Boolean> renew(Connection c, UUID job, int shard, String owner, Duration lease,
                                          long bytesDone) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                UPDATE merge_task t SET lease_expires_at = now() + make_interval(secs => ?), bytes_done = ?
                FROM merge_job j
                WHERE t.job_id = ? AND t.shard = ? AND t.lease_owner = ? AND t.state = 'RUNNING' AND j.id = t.job_id
                RETURNING j.cancel_requested OR j.state <> 'RUNNING'
                          OR EXISTS (SELECT 1 FROM merge_task x WHERE x.job_id = t.job_id AND x.state = 'FAILED')""")) {
            s.setDouble(1, lease.toMillis() / 1000.0);
            s.setLong(2, bytesDone);
            s.setObject(3, job);
            s.setInt(4, shard);
            s.setString(5, owner);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? Optional.of(rs.getBoolean(1)) : Optional.empty();
            }
        }
    }

    /** Records a task merged and uploaded by {@code owner}; false if it no longer holds it. */
    public static boolean done(Connection c, UUID job, int shard, String owner, long size, String crc32c)
            throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                UPDATE merge_task SET state = 'DONE', lease_owner = NULL, lease_expires_at = NULL, merged_by = ?,
                       size = ?, crc32c = ?, bytes_done = bytes_total
                WHERE job_id = ? AND shard = ? AND lease_owner = ? AND state = 'RUNNING'""")) {
            s.setString(1, owner);
            s.setLong(2, size);
            s.setString(3, crc32c);
            s.setObject(4, job);
            s.setInt(5, shard);
            s.setString(6, owner);
            return s.executeUpdate() == 1;
        }
    }

    /**
     * Ends a task {@code owner} holds: failed for good ({@code error} set) or, on something passing or when its
     * worker stops, queued again (the attempt given back when {@code giveBack}).
     */
    public static void end(Connection c, UUID job, int shard, String owner, Optional<String> error, boolean giveBack)
            throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                UPDATE merge_task SET state = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL, bytes_done = 0,
                       attempts = CASE WHEN ? THEN greatest(attempts - 1, 0) ELSE attempts END
                WHERE job_id = ? AND shard = ? AND lease_owner = ? AND state = 'RUNNING'""")) {
            s.setString(1, error.isPresent() ? "FAILED" : "QUEUED");
            s.setString(2, error.orElse(""));
            s.setBoolean(3, giveBack);
            s.setObject(4, job);
            s.setInt(5, shard);
            s.setString(6, owner);
            s.executeUpdate();
        }
    }

    /** Queues a done task again: its upload was found missing or changed at commit. */
    public static void requeue(Connection c, UUID job, int shard) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                UPDATE merge_task SET state = 'QUEUED', merged_by = '', size = 0, crc32c = '', bytes_done = 0
                WHERE job_id = ? AND shard = ? AND state = 'DONE'""")) {
            s.setObject(1, job);
            s.setInt(2, shard);
            s.executeUpdate();
        }
    }

    public static List<ShardTask> list(Connection c, UUID job) throws SQLException {
        List<ShardTask> tasks = new ArrayList<>();
        try (PreparedStatement s = c.prepareStatement("SELECT *, (state = 'RUNNING' AND lease_expires_at >= now())"
                + " AS held FROM merge_task WHERE job_id = ? ORDER BY shard")) {
            s.setObject(1, job);
            try (ResultSet rs = s.executeQuery()) {
                while (rs.next()) {
                    tasks.add(task(rs));
                }
            }
        }
        return tasks;
    }

    /** Whether any task of {@code job} is held by a worker now (running with an unexpired lease). */
    public static boolean anyHeld(Connection c, UUID job) throws SQLException {
        try (PreparedStatement s = c.prepareStatement(
                "SELECT 1 FROM merge_task WHERE job_id = ? AND state = 'RUNNING' AND lease_expires_at >= now() LIMIT 1")) {
            s.setObject(1, job);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next();
            }
        }
    }

    /** The job is ending: its queued tasks fail, so no worker claims them and those running stop. */
    public static void failQueued(Connection c, UUID job, String error) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("""
                UPDATE merge_task SET state = 'FAILED', error = ? WHERE job_id = ? AND state = 'QUEUED'""")) {
            s.setString(1, error);
            s.setObject(2, job);
            s.executeUpdate();
        }
    }

    /** Forgets a job's tasks (its uploads are gone): a later attempt plans them again. */
    public static void delete(Connection c, UUID job) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("DELETE FROM merge_task WHERE job_id = ?")) {
            s.setObject(1, job);
            s.executeUpdate();
        }
    }

    private static ShardTask task(ResultSet rs) throws SQLException {
        return new ShardTask(rs.getObject("job_id", UUID.class), rs.getInt("shard"), rs.getString("file"),
                ShardTask.State.valueOf(rs.getString("state")), rs.getInt("attempts"), rs.getLong("bytes_total"),
                rs.getLong("bytes_done"), rs.getString("merged_by"), rs.getLong("size"), rs.getString("crc32c"),
                rs.getString("error"), rs.getBoolean("held"));
    }
}
