package io.modelmerge.registry.api;

import io.modelmerge.registry.auth.Caller;
import io.modelmerge.registry.auth.Tokens;
import io.modelmerge.registry.client.Identity;
import io.modelmerge.registry.client.Scope;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.DELETE;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.net.URI;
import java.util.List;

/**
 * API tokens: made by an admin (the token shown once), listed without secrets, revoked; an admin of {@code team/*}
 * sees and governs only tokens within {@code team/*}. And who the caller is.
 */
@Path("/api/v1/tokens")
@Produces(MediaType.APPLICATION_JSON)
@Consumes(MediaType.APPLICATION_JSON)
public class TokenResource {
    private final Tokens tokens;
    private final Caller caller;

    public TokenResource(Tokens tokens, Caller caller) {
        this.tokens = tokens;
        this.caller = caller;
    }

    @POST
    public Response create(TokenView.Request request) {
        caller.requireAdmin();
        TokenView.Request body = ModelResource.required(request);
        Tokens.Created created = tokens.create(caller.identity(), body.name(), body.scopes(), body.namespaces(),
                body.aliases(), body.expiresAt());
        return Response.created(URI.create("/api/v1/tokens/" + created.row().id()))
                .entity(new TokenView.Created(created.token(), TokenView.of(created.row()))).build();
    }

    @GET
    public List<TokenView> list() {
        caller.requireAdmin();
        return tokens.list(caller.identity()).stream().map(TokenView::of).toList();
    }

    @GET
    @Path("self")
    public TokenView.Self self() {
        Identity me = caller.identity();
        return new TokenView.Self(me.tokenId(), me.name(), me.scopes().stream().map(Scope::label).sorted().toList(),
                me.namespaces(), me.aliases());
    }

    @DELETE
    @Path("{id}")
    public Response revoke(@PathParam("id") String id) {
        caller.requireAdmin();
        tokens.revoke(caller.identity(), id);
        return Response.noContent().build();
    }
}
