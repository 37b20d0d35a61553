package io.modelmerge.mergeservice.evaluation;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.modelmerge.engine.search.Candidate;
import io.modelmerge.engine.search.EvaluationFailedException;
import io.modelmerge.engine.search.Evaluator;
import io.modelmerge.engine.search.Score;
import io.modelmerge.engine.search.ScoreCache;
import io.modelmerge.registry.client.Signatures;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Clock;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * An evaluator reached over HTTP: the candidate is POSTed as JSON ({@code {"candidate": {...}}}), signed as
 * webhooks are ({@link Signatures}), and the answer is {@code {"score": s, "metrics": {...}}}: at once (200), or
 * later (202), by a signed POST to the candidate's {@code callback_url} that lands in the stored scores
 * ({@link EvaluationCallbacks}), which this waits for. Any other answer, one without a score, or no score before
 * the candidate's deadline fails that candidate.
 */
public final class HttpEvaluator implements Evaluator {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String name;
    private final String version;
    private final URI url;
    private final String secret;
    private final HttpClient client;
    private final Clock clock;
    private final Optional<Callbacks> callbacks;

    /**
     * Where an evaluator that answers later sends its score ({@code url}, given it with each candidate), and where
     * that score is then found.
     */
    public record Callbacks(URI url, ScoreCache scores) {
    }

    /** An evaluator that must answer at once. */
    public HttpEvaluator(String name, String version, URI url, String secret, HttpClient client, Clock clock) {
        this(name, version, url, secret, client, clock, Optional.empty());
    }

    public HttpEvaluator(String name, String version, URI url, String secret, HttpClient client, Clock clock,
                         Optional<Callbacks> callbacks) {
        this.name = name;
        this.version = version;
        this.url = url;
        this.secret = secret;
        this.client = client;
        this.clock = clock;
        this.callbacks = callbacks;
    }

    @Override
    public String id() {
        return name + "@" + version;
    }

    @Override
    public Score score(Candidate candidate) throws EvaluationFailedException {
        Duration left = Duration.between(clock.instant(), candidate.deadline());
        if (left.isNegative() || left.isZero()) {
            throw new EvaluationFailedException(id() + ": the deadline of '" + candidate.ref() + "' has passed");
        }
        String body = body(candidate);
        long timestamp = clock.instant().getEpochSecond();
        HttpRequest request = HttpRequest.newBuilder(url)
                .timeout(left)
                .header("Content-Type", "application/json")
                .header("X-Modelmerge-Timestamp", Long.toString(timestamp))
                .header("X-Modelmerge-Signature", Signatures.sign(secret, timestamp, body))
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build();
        HttpResponse<String> response;
        try {
            response = client.send(request, HttpResponse.BodyHandlers.ofString());
        } catch (HttpTimeoutException e) {
            throw new EvaluationFailedException(id() + " did not answer for '" + candidate.ref() + "' before its"
                    + " deadline " + candidate.deadline(), e);
        } catch (IOException e) {
            throw new EvaluationFailedException(id() + " at " + url + " could not be reached for '" + candidate.ref()
                    + "': " + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage()), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new EvaluationFailedException(id() + ": interrupted while scoring '" + candidate.ref() + "'", e);
        }
        if (response.statusCode() == 202) {
            return later(candidate);
        }
        if (response.statusCode() != 200) {
            throw new EvaluationFailedException(id() + " answered " + response.statusCode() + " for '"
                    + candidate.ref() + "': " + abbreviated(response.body()));
        }
        return parse(candidate, response.body());
    }

    private String body(Candidate candidate) {
        Map<String, Object> fields = new LinkedHashMap<>();
        fields.put("ref", candidate.ref());
        fields.put("content_digest", candidate.contentDigest());
        fields.put("location", candidate.location());
        fields.put("split", candidate.split());
        fields.put("deadline", candidate.deadline().toString());
        callbacks.ifPresent(c -> {
            fields.put("callback_url", c.url().toString());
            fields.put("evaluator", id()); // what the callback names
        });
        try {
            return JSON.writeValueAsString(Map.of("candidate", fields));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The score an evaluator that answered 202 sends back, waited for until the candidate's deadline. */
    private Score later(Candidate candidate) throws EvaluationFailedException {
        if (callbacks.isEmpty()) {
            throw new EvaluationFailedException(id() + " answered 202 (later) for '" + candidate.ref() + "', but this"
                    + " service gives no callback URL");
        }
        long wait = 50;
        while (clock.instant().isBefore(candidate.deadline())) {
            Optional<Score> score = callbacks.get().scores().get(id(), candidate.contentDigest());
            if (score.isPresent()) {
                return score.get();
            }
            try {
                Thread.sleep(Math.min(wait, Math.max(1, Duration.between(clock.instant(), candidate.deadline())
                        .toMillis())));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new EvaluationFailedException(id() + ": interrupted while waiting for '" + candidate.ref()
                        + "'", e);
            }
            wait = Math.min(1000, wait * 2);
        }
        throw new EvaluationFailedException(id() + " sent no score for '" + candidate.ref() + "' before its deadline "
                + candidate.deadline());
    }

    private Score parse(Candidate candidate, String body) throws EvaluationFailedException {
        try {
            JsonNode answer = JSON.readTree(body);
            JsonNode score = answer.get("score");
            if (score == null || !score.isNumber()) {
                throw new EvaluationFailedException(id() + " answered no numeric score for '" + candidate.ref()
                        + "': " + abbreviated(body));
            }
            Map<String, Double> metrics = new LinkedHashMap<>();
            JsonNode named = answer.path("metrics");
            for (var field : named.properties()) {
                if (field.getValue().isNumber()) {
                    metrics.put(field.getKey(), field.getValue().asDouble());
                }
            }
            return new Score(score.asDouble(), metrics);
        } catch (IOException e) {
            throw new EvaluationFailedException(id() + " answered something other than JSON for '" + candidate.ref()
                    + "': " + abbreviated(body), e);
        } catch (IllegalArgumentException e) {
            throw new EvaluationFailedException(id() + " answered an unusable score for '" + candidate.ref() + "': "
                    + e.getMessage(), e);
        }
    }

    private static String abbreviated(String text) {
        return text.length() <= 200 ? text : text.substring(0, 200) + "…";
    }
}
