package io.modelmerge.service.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A write the embedded PostgreSQL acknowledged is there after the whole cluster is killed with SIGKILL. */
class EmbeddedDatabaseDurabilityTest {
    private static final int WRITERS = 8;
    private static final int ACKNOWLEDGED_BEFORE_THE_KILL = 400;

    @TempDir
    Path dir;

    @Test
    void acknowledgedCommitsSurviveAKillOfTheWholeCluster() throws Exception {
        Path cluster = dir.resolve("db");
        EmbeddedPostgres postgres = EmbeddedDatabase.start(cluster);
        String url = postgres.getJdbcUrl("postgres", "postgres");
        try (Connection c = DriverManager.getConnection(url); Statement s = c.createStatement()) {
            assertEquals("on", show(s, "fsync"));
            assertEquals("on", show(s, "synchronous_commit"));
            s.execute("CREATE TABLE acknowledged (id BIGINT PRIMARY KEY, payload TEXT NOT NULL)");
        }
        Set<Long> acknowledged = ConcurrentHashMap.newKeySet();
        AtomicLong ids = new AtomicLong();
        List<Thread> writers = new ArrayList<>();
        for (int w = 0; w < WRITERS; w++) {
            writers.add(Thread.ofPlatform().start(() -> {
                try (Connection c = DriverManager.getConnection(url);
                     PreparedStatement insert = c.prepareStatement("INSERT INTO acknowledged VALUES (?, ?)")) {
                    while (true) {
                        long id = ids.incrementAndGet();
                        insert.setLong(1, id);
                        insert.setString(2, "row " + id);
                        insert.executeUpdate(); // autocommit: returning means the commit was acknowledged
                        acknowledged.add(id);
                    }
                } catch (SQLException killed) {
                    // the cluster went away under the writer
                }
            }));
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (acknowledged.size() < ACKNOWLEDGED_BEFORE_THE_KILL && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        killCluster(cluster);
        for (Thread writer : writers) {
            writer.join(TimeUnit.SECONDS.toMillis(30));
        }
        assertFalse(EmbeddedDatabase.running(cluster));
        postgres.close(); // releases the library's lock on the directory; the server is already gone
        assertTrue(acknowledged.size() >= ACKNOWLEDGED_BEFORE_THE_KILL, acknowledged.size() + " acknowledged");

        try (EmbeddedPostgres restarted = EmbeddedDatabase.start(cluster);
             Connection c = DriverManager.getConnection(restarted.getJdbcUrl("postgres", "postgres"));
             Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT id FROM acknowledged")) {
            Set<Long> stored = ConcurrentHashMap.newKeySet();
            while (rs.next()) {
                stored.add(rs.getLong(1));
            }
            List<Long> lost = acknowledged.stream().filter(id -> !stored.contains(id)).sorted().toList();
            assertEquals(List.of(), lost, "acknowledged rows lost, of " + acknowledged.size());
        }
    }

    private static String show(Statement s, String setting) throws SQLException {
        try (ResultSet rs = s.executeQuery("SHOW " + setting)) {
            rs.next();
            return rs.getString(1);
        }
    }

    /** SIGKILL to the postmaster and every backend at once: a crash, no shutdown checkpoint, no WAL flush. */
    private static void killCluster(Path cluster) throws Exception {
        long pid = Long.parseLong(java.nio.file.Files.readAllLines(cluster.resolve("postmaster.pid")).getFirst().trim());
        ProcessHandle postmaster = ProcessHandle.of(pid).orElseThrow();
        List<ProcessHandle> all = new ArrayList<>(postmaster.descendants().toList());
        all.add(postmaster);
        all.forEach(ProcessHandle::destroyForcibly); // SIGKILL
        postmaster.onExit().get(30, TimeUnit.SECONDS);
    }
}
