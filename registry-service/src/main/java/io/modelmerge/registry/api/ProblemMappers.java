package io.modelmerge.registry.api;

import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.UriInfo;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.stream.Collectors;
import org.jboss.logging.Logger;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

/** Every error the API returns, as problem+json with the status the documentation gives it. */
public class ProblemMappers {
    private static final Logger LOG = Logger.getLogger(ProblemMappers.class);

    @ServerExceptionMapper
    public Response refused(RegistryException e, UriInfo uri) {
        return problem(e.status(), e.getMessage(), uri, e.errors());
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
        String reason = e.getOriginalMessage();
        return problem(400, (field.isEmpty() ? "body" : field) + ": " + reason, uri,
                List.of(new RegistryException.FieldError(field.isEmpty() ? "body" : field, reason)));
    }

    @ServerExceptionMapper
    public Response unparsable(JsonParseException e, UriInfo uri) {
        String reason = "not valid JSON: " + e.getOriginalMessage();
        return problem(400, "body: " + reason, uri, List.of(new RegistryException.FieldError("body", reason)));
    }

    /** Unknown paths, wrong methods or media types, as problems too. */
    @ServerExceptionMapper
    public Response http(WebApplicationException e, UriInfo uri) {
        if (e.getCause() instanceof JsonProcessingException json) {
            String reason = "not valid JSON: " + json.getOriginalMessage();
            return problem(400, "body: " + reason, uri, List.of(new RegistryException.FieldError("body", reason)));
        }
        return problem(e.getResponse().getStatus(), e.getMessage(), uri, List.of());
    }

    /** The storage behind a version could not be reached: not the caller's fault, and worth a retry. */
    @ServerExceptionMapper
    public Response storage(UncheckedIOException e, UriInfo uri) {
        LOG.warn("Storage failure", e);
        return problem(502, e.getMessage(), uri, List.of());
    }

    @ServerExceptionMapper
    public Response unexpected(RuntimeException e, UriInfo uri) {
        LOG.error("Unexpected failure", e);
        return problem(500, "Internal error: " + e.getClass().getSimpleName() + ": " + e.getMessage(), uri, List.of());
    }

    private static Response problem(int status, String detail, UriInfo uri, List<RegistryException.FieldError> errors) {
        Response.Status known = Response.Status.fromStatusCode(status);
        String title = known != null ? known.getReasonPhrase() : status == 422 ? "Unprocessable Content" : "Error";
        return Response.status(status).type(Problem.MEDIA_TYPE)
                .entity(new Problem("about:blank", title, status, detail, uri.getPath(), errors)).build();
    }
}
