package io.modelmerge.registry.api;

import io.modelmerge.registry.auth.Caller;
import io.modelmerge.registry.client.Scope;
import io.modelmerge.registry.model.RequestNames;
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
    private final Caller caller;

    public ResolveResource(Registry registry, Caller caller) {
        this.registry = registry;
        this.caller = caller;
    }

    @GET
    public VersionView resolve(@QueryParam("ref") String ref) {
        caller.require(Scope.READ, RequestNames.ref("ref", ref).model().toString());
        return Views.of(registry.resolve(ref));
    }
}
