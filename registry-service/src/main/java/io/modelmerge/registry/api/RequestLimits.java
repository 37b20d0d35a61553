package io.modelmerge.registry.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.modelmerge.service.limits.Limits;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.util.List;
import java.util.Map;

/**
 * The size limits of a request's URI, headers and body, enforced before routing with problem+json answers (414,
 * 431, 413). The HTTP codec's own limits, which answer with an empty body, are set far above these
 * (application.properties), so a request over a limit gets this explanation rather than a bare status.
 */
@ApplicationScoped
public class RequestLimits {
    /** Bytes of the request target (path and query). */
    public static final int URI_BYTES = 8 << 10;
    /** Bytes of all header names and values. */
    public static final int HEADER_BYTES = 32 << 10;
    /** Before Quarkus' own body-size check (order -2). */
    private static final int ORDER = -3;

    private static final BodyHandler BODY = BodyHandler.create(false).setBodyLimit(Limits.REQUEST_BODY_BYTES);

    private final ObjectMapper json;

    public RequestLimits(ObjectMapper json) {
        this.json = json;
    }

    void install(@Observes Router router) {
        router.route().order(ORDER).handler(this::check).failureHandler(this::bodyTooLarge);
    }

    /** A body without a Content-Length that grew past the limit while being read (below). */
    private void bodyTooLarge(RoutingContext context) {
        if (context.statusCode() == 413 && !context.response().headWritten()) {
            refuse(context, 413, "the request body is over the limit of " + Limits.REQUEST_BODY_BYTES + " bytes");
        } else {
            context.next();
        }
    }

    private void check(RoutingContext context) {
        HttpServerRequest request = context.request();
        int uri = request.uri().length();
        if (uri > URI_BYTES) {
            refuse(context, 414, "the request URI is " + uri + " bytes, over the limit of " + URI_BYTES);
            return;
        }
        int headers = 0;
        for (Map.Entry<String, String> header : request.headers()) {
            headers += header.getKey().length() + header.getValue().length();
        }
        if (headers > HEADER_BYTES) {
            refuse(context, 431, "the request headers are " + headers + " bytes, over the limit of " + HEADER_BYTES);
            return;
        }
        String length = request.getHeader("Content-Length");
        if (length != null && length.chars().allMatch(Character::isDigit) && length.length() < 19
                && Long.parseLong(length) > Limits.REQUEST_BODY_BYTES) {
            refuse(context, 413, "the request body is " + length + " bytes, over the limit of "
                    + Limits.REQUEST_BODY_BYTES);
            return;
        }
        if (length == null && request.headers().contains("Transfer-Encoding")) {
            // A chunked body's size shows only while it is read: read it here, failing with 413 past the limit.
            BODY.handle(context);
            return;
        }
        context.next();
    }

    private void refuse(RoutingContext context, int status, String detail) {
        String path = context.request().path();
        Problem problem = new Problem("about:blank", ProblemMappers.title(status), status, detail,
                path.length() > 200 ? path.substring(0, 200) + "..." : path, List.of());
        String body;
        try {
            body = json.writeValueAsString(problem);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        var response = context.response().setStatusCode(status).putHeader("Content-Type", Problem.MEDIA_TYPE);
        if (context.request().version() != HttpVersion.HTTP_2) {
            response.putHeader("Connection", "close"); // the unread body, if any, is not waited for
        }
        response.end(body);
    }
}
