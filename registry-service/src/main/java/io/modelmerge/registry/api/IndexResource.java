package io.modelmerge.registry.api;

import io.modelmerge.registry.auth.Caller;
import io.modelmerge.registry.client.Scope;
import io.modelmerge.registry.service.IndexRequest;
import io.modelmerge.registry.service.Indexer;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.net.URI;

/** {@code /api/v1/index}: scan a storage prefix in the background and register the checkpoints found. */
@Path("/api/v1/index")
@Produces(MediaType.APPLICATION_JSON)
@Consumes(MediaType.APPLICATION_JSON)
public class IndexResource {
    private final Indexer indexer;
    private final Caller caller;

    public IndexResource(Indexer indexer, Caller caller) {
        this.indexer = indexer;
        this.caller = caller;
    }

    /** 202 with the task; poll its Location until the state is SUCCEEDED or FAILED. */
    @POST
    public Response start(IndexRequest request) {
        String namespace = ModelResource.required(request).namespace();
        if (namespace != null) {
            caller.requireNamespace(Scope.WRITE, namespace);
        }
        IndexTaskView task = Views.of(indexer.start(request, caller.name()));
        return Response.accepted(task).location(URI.create("/api/v1/index/" + task.id())).build();
    }

    @GET
    @Path("{id}")
    public IndexTaskView task(@PathParam("id") String id) {
        IndexTaskView task = Views.of(indexer.task(id));
        caller.requireNamespace(Scope.READ, task.namespace());
        return task;
    }
}
