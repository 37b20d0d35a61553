package io.modelmerge.registry.api;

import io.modelmerge.registry.auth.Caller;
import io.modelmerge.registry.client.Scope;
import io.modelmerge.registry.db.WebhookRow;
import io.modelmerge.registry.model.RegistryException;
import io.modelmerge.registry.model.RequestNames;
import io.modelmerge.registry.webhooks.Webhooks;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.DELETE;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.net.URI;
import java.util.List;
import java.util.Map;

/**
 * Webhooks of a namespace (admin there): {@code version.ready}, {@code alias.moved}, {@code job.finished} POSTed,
 * signed, to a URL; their deliveries, and replaying one. And the merge service's report of a finished job.
 */
@Path("/api/v1")
@Produces(MediaType.APPLICATION_JSON)
@Consumes(MediaType.APPLICATION_JSON)
public class WebhookResource {
    private final Webhooks webhooks;
    private final Caller caller;

    public WebhookResource(Webhooks webhooks, Caller caller) {
        this.webhooks = webhooks;
        this.caller = caller;
    }

    @POST
    @Path("webhooks")
    public Response register(WebhookView.Request request) {
        WebhookView.Request body = ModelResource.required(request);
        if (body.namespace() != null) {
            caller.requireNamespace(Scope.ADMIN, body.namespace());
        }
        WebhookRow made = webhooks.register(body.namespace(), body.url(), body.events(), caller.name());
        return Response.created(URI.create("/api/v1/webhooks/" + made.id())).entity(WebhookView.made(made)).build();
    }

    @GET
    @Path("webhooks")
    public List<WebhookView> list(@QueryParam("namespace") String namespace) {
        if (namespace == null || namespace.isBlank()) {
            throw RegistryException.badRequest("namespace", "is required: the webhooks of which namespace");
        }
        caller.requireNamespace(Scope.ADMIN, namespace);
        return webhooks.inNamespace(namespace).stream().map(WebhookView::listed).toList();
    }

    @DELETE
    @Path("webhooks/{id}")
    public Response delete(@PathParam("id") String id) {
        caller.requireNamespace(Scope.ADMIN, webhooks.webhook(id).namespace());
        webhooks.delete(id);
        return Response.noContent().build();
    }

    @GET
    @Path("webhooks/{id}/deliveries")
    public List<WebhookRow.Delivery> deliveries(@PathParam("id") String id) {
        caller.requireNamespace(Scope.ADMIN, webhooks.webhook(id).namespace());
        return webhooks.deliveries(id);
    }

    /** 202 with the new delivery, due now. */
    @POST
    @Path("webhooks/{id}/deliveries/{delivery}/replay")
    @Consumes(MediaType.WILDCARD) // no body
    public Response replay(@PathParam("id") String id, @PathParam("delivery") long delivery) {
        caller.requireNamespace(Scope.ADMIN, webhooks.webhook(id).namespace());
        return Response.accepted(webhooks.replay(id, delivery)).build();
    }

    /** The merge service reports a job that ended (write on its output model): 202, delivered as job.finished. */
    @POST
    @Path("events/job-finished")
    public Response jobFinished(WebhookView.JobFinished report) {
        WebhookView.JobFinished body = ModelResource.required(report);
        String model = RequestNames.model("model", body.model()).toString();
        caller.require(Scope.WRITE, model);
        webhooks.jobFinished(model, body.job() == null ? Map.of() : body.job(), caller.name());
        return Response.accepted().build();
    }
}
