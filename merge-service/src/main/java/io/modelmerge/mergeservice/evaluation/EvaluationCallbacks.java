package io.modelmerge.mergeservice.evaluation;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.modelmerge.engine.search.Score;
import io.modelmerge.mergeservice.jobs.JobException;
import io.modelmerge.registry.client.Signatures;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.io.IOException;
import java.time.Clock;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * {@code POST /evaluations/callback}: where an evaluator that answered 202 sends a candidate's score,
 * {@code {"evaluator": "ns/name@version", "content_digest": ..., "score": s, "metrics": {...}}}, signed with its
 * secret as the request was (timestamp within 5 minutes). The score is stored like any other, where the search
 * waiting for it finds it (on any replica). 204 stored; 400 a body without those fields; 401 a bad or old
 * signature; 404 no such evaluator.
 */
@ApplicationScoped
public class EvaluationCallbacks {
    public static final String PATH = "/evaluations/callback";
    private static final Logger LOG = Logger.getLogger(EvaluationCallbacks.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_AGE_SECONDS = 300;

    private final Evaluators evaluators;
    private final StoredScores scores;

    public EvaluationCallbacks(Evaluators evaluators, StoredScores scores) {
        this.evaluators = evaluators;
        this.scores = scores;
    }

    void install(@Observes Router router) {
        router.post(PATH).handler(BodyHandler.create().setBodyLimit(64 * 1024)).blockingHandler(this::receive);
    }

    private void receive(RoutingContext context) {
        String body = context.body().asString();
        JsonNode callback;
        try {
            callback = JSON.readTree(body == null ? "" : body);
        } catch (IOException e) {
            answer(context, 400, "the body is not JSON");
            return;
        }
        String ref = callback == null ? "" : callback.path("evaluator").asText("");
        String digest = callback == null ? "" : callback.path("content_digest").asText("");
        JsonNode score = callback == null ? null : callback.get("score");
        if (ref.isEmpty() || digest.isEmpty() || score == null || !score.isNumber() || Double.isNaN(score.asDouble())) {
            answer(context, 400, "give evaluator, content_digest and a numeric score");
            return;
        }
        Optional<RegisteredEvaluator> evaluator = registered(ref);
        if (evaluator.isEmpty()) {
            answer(context, 404, "no evaluator " + ref + " is registered");
            return;
        }
        if (!Signatures.verify(evaluator.get().secret(), context.request().getHeader("X-Modelmerge-Timestamp"), body,
                context.request().getHeader("X-Modelmerge-Signature"), Clock.systemUTC().instant().getEpochSecond(),
                MAX_AGE_SECONDS)) {
            answer(context, 401, "bad signature or a timestamp more than 5 minutes away");
            return;
        }
        Map<String, Double> metrics = new LinkedHashMap<>();
        for (var field : callback.path("metrics").properties()) {
            if (field.getValue().isNumber()) {
                metrics.put(field.getKey(), field.getValue().asDouble());
            }
        }
        scores.put(evaluator.get().ref(), digest, new Score(score.asDouble(), metrics));
        LOG.debugf("Score of %s from %s stored", digest, ref);
        context.response().setStatusCode(204).end();
    }

    private Optional<RegisteredEvaluator> registered(String ref) {
        try {
            return Optional.of(evaluators.registered(ref));
        } catch (JobException e) {
            return Optional.empty();
        }
    }

    private static void answer(RoutingContext context, int status, String error) {
        try {
            context.response().setStatusCode(status).putHeader("Content-Type", "application/json")
                    .end(JSON.writeValueAsString(Map.of("error", error)));
        } catch (IOException e) {
            context.response().setStatusCode(status).end();
        }
    }
}
