package io.modelmerge.registry.api;

import io.modelmerge.registry.service.Registry;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;

/** {@code GET /api/v1/resolve?ref=ns/name@alias|@N|}: the one call a merge worker makes per input. */
@Path("/api/v1/resolve")
@Produces(MediaType.APPLICATION_JSON)
public class ResolveResource {
    private final Registry registry;

    public ResolveResource(Registry registry) {
        this.registry = registry;
    }

    @GET
    public VersionView resolve(@QueryParam("ref") String ref) {
        return Views.of(registry.resolve(ref));
    }
}
