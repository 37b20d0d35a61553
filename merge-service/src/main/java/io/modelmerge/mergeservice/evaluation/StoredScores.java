package io.modelmerge.mergeservice.evaluation;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.modelmerge.engine.search.Score;
import io.modelmerge.engine.search.ScoreCache;
import io.modelmerge.service.db.Database;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.Map;
import java.util.Optional;

/** Scores kept in the service's database: shared by every job and replica, kept across restarts. */
@ApplicationScoped
public class StoredScores implements ScoreCache {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Database db;

    public StoredScores(Database db) {
        this.db = db;
    }

    @Override
    public Optional<Score> get(String evaluator, String contentDigest) {
        return db.read(c -> {
            try (PreparedStatement s = c.prepareStatement(
                    "SELECT score, metrics FROM evaluation_score WHERE evaluator = ? AND content_digest = ?")) {
                s.setString(1, evaluator);
                s.setString(2, contentDigest);
                try (ResultSet rs = s.executeQuery()) {
                    if (!rs.next()) {
                        return Optional.empty();
                    }
                    return Optional.of(new Score(rs.getDouble("score"), metrics(rs.getString("metrics"))));
                }
            }
        });
    }

    @Override
    public void put(String evaluator, String contentDigest, Score score) {
        db.transaction(c -> {
            try (PreparedStatement s = c.prepareStatement("""
                    INSERT INTO evaluation_score (evaluator, content_digest, score, metrics) VALUES (?, ?, ?, ?::jsonb)
                    ON CONFLICT (evaluator, content_digest) DO NOTHING""")) {
                s.setString(1, evaluator);
                s.setString(2, contentDigest);
                s.setDouble(3, score.value());
                s.setString(4, JSON.writeValueAsString(score.metrics()));
                s.executeUpdate();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return null;
        });
    }

    private static Map<String, Double> metrics(String json) {
        try {
            return JSON.readValue(json, new TypeReference<Map<String, Double>>() {
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
