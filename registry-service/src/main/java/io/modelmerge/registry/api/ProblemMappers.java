package io.modelmerge.registry.api;

import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import io.modelmerge.registry.model.RegistryException;
import io.modelmerge.service.db.DatabaseException;
import io.modelmerge.service.limits.LimitException;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.UriInfo;
import java.io.UncheckedIOException;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.UUID;
import java.util.stream.Collectors;
import org.jboss.logging.Logger;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

/**
 * Every error the API returns, as problem+json with the status the documentation gives it. What a caller reads
 * names its own request's fields and values; the internals (exception classes, SQL, the storage client's own
 * messages, stack traces) stay in the log, under the reference the answer gives.
 */
public class ProblemMappers {
    private static final Logger LOG = Logger.getLogger(ProblemMappers.class);

    @ServerExceptionMapper
    public Response refused(RegistryException e, UriInfo uri) {
        Response problem = problem(e.status(), e.getMessage(), uri, e.errors());
        if (e.status() == 401) {
            return Response.fromResponse(problem).header("WWW-Authenticate", "Bearer realm=\"modelmerge\"").build();
        }
        return problem;
    }

    @ServerExceptionMapper
    public Response overLimit(LimitException e, UriInfo uri) {
        return problem(400, e.getMessage(), uri, List.of(new RegistryException.FieldError(e.field(), e.reason())));
    }

    /**
     * A body whose JSON is fine but whose values have the wrong type, or that names unknown fields. (Mapped by
     * its own type too, or Quarkus' built-in mapper for it answers with an empty 400.)
     */
    @ServerExceptionMapper
    public Response mismatched(MismatchedInputException e, UriInfo uri) {
        return badJson(e, uri);
    }

    @ServerExceptionMapper
    public Response badJson(JsonMappingException e, UriInfo uri) {
        String field = e.getPath().stream()
                .map(ref -> ref.getFieldName() != null ? ref.getFieldName() : "[" + ref.getIndex() + "]")
                .collect(Collectors.joining(".")).replace(".[", "[");
        String reason;
        if (e instanceof UnrecognizedPropertyException unknown) {
            reason = "is not a field of this request" + known(unknown.getKnownPropertyIds());
        } else if (e instanceof MismatchedInputException mismatch && mismatch.getTargetType() != null) {
            reason = "must be " + jsonType(mismatch.getTargetType());
        } else {
            reason = "is not what this request takes";
        }
        String at = field.isEmpty() ? "body" : field;
        return problem(400, at + ": " + reason, uri, List.of(new RegistryException.FieldError(at, reason)));
    }

    @ServerExceptionMapper
    public Response unparsable(JsonParseException e, UriInfo uri) {
        String reason = "not valid JSON: " + firstLine(e.getOriginalMessage());
        return problem(400, "body: " + reason, uri, List.of(new RegistryException.FieldError("body", reason)));
    }

    /** Unknown paths, wrong methods or media types, as problems too. */
    @ServerExceptionMapper
    public Response http(WebApplicationException e, UriInfo uri) {
        if (e.getCause() instanceof JsonProcessingException json) {
            String reason = "not valid JSON: " + firstLine(json.getOriginalMessage());
            return problem(400, "body: " + reason, uri, List.of(new RegistryException.FieldError("body", reason)));
        }
        int status = e.getResponse().getStatus();
        Response.Status known = Response.Status.fromStatusCode(status);
        return problem(status, known != null ? known.getReasonPhrase() : "HTTP " + status, uri, List.of());
    }

    /** The storage behind a version could not be reached: not the caller's fault, and worth a retry. */
    @ServerExceptionMapper
    public Response storage(UncheckedIOException e, UriInfo uri) {
        LOG.warn("Storage failure", e);
        return problem(502, e.getMessage(), uri, List.of());
    }

    /** A database that cannot be reached is 503 (retry later); any other database failure is a bug: 500. */
    @ServerExceptionMapper
    public Response database(DatabaseException e, UriInfo uri) {
        if (e.unavailable()) {
            LOG.warn("Database unavailable: " + e.getMessage());
            return Response.fromResponse(problem(503, "the registry's database is unavailable; retry later", uri,
                    List.of())).header("Retry-After", "5").build();
        }
        return unexpected(e, uri);
    }

    @ServerExceptionMapper
    public Response unexpected(RuntimeException e, UriInfo uri) {
        String reference = UUID.randomUUID().toString();
        LOG.errorf(e, "Unexpected failure (reference %s)", reference);
        return problem(500, "internal error (reference " + reference + " in the registry's log)", uri, List.of());
    }

    private static String known(Collection<Object> fields) {
        if (fields == null || fields.isEmpty()) {
            return "";
        }
        TreeSet<String> names = new TreeSet<>();
        fields.forEach(f -> names.add(String.valueOf(f)));
        return " (fields: " + String.join(", ", names) + ")";
    }

    /** The JSON a Java type is read from, in JSON's own words. */
    private static String jsonType(Class<?> type) {
        if (type == Integer.class || type == int.class || type == Long.class || type == long.class) {
            return "a whole number";
        }
        if (Number.class.isAssignableFrom(type) || type == double.class || type == float.class) {
            return "a number";
        }
        if (type == Boolean.class || type == boolean.class) {
            return "true or false";
        }
        if (type == String.class) {
            return "a string";
        }
        if (Collection.class.isAssignableFrom(type) || type.isArray()) {
            return "a list";
        }
        if (Map.class.isAssignableFrom(type) || type.isRecord()) {
            return "an object";
        }
        return "a value of another type";
    }

    private static String firstLine(String message) {
        return message == null ? "" : message.lines().findFirst().orElse("");
    }

    static Response problem(int status, String detail, UriInfo uri, List<RegistryException.FieldError> errors) {
        return problem(status, detail, uri.getPath(), errors);
    }

    static Response problem(int status, String detail, String path, List<RegistryException.FieldError> errors) {
        return Response.status(status).type(Problem.MEDIA_TYPE)
                .entity(new Problem("about:blank", title(status), status, detail, path, errors)).build();
    }

    static String title(int status) {
        Response.Status known = Response.Status.fromStatusCode(status);
        return known != null ? known.getReasonPhrase() : switch (status) {
            case 422 -> "Unprocessable Content";
            case 431 -> "Request Header Fields Too Large";
            default -> "Error";
        };
    }
}
