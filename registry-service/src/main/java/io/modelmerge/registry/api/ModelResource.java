package io.modelmerge.registry.api;

import com.fasterxml.jackson.databind.JsonNode;
import io.modelmerge.registry.auth.Caller;
import io.modelmerge.registry.client.Identity;
import io.modelmerge.registry.client.ModelName;
import io.modelmerge.registry.client.Scope;
import io.modelmerge.registry.model.RegistryException;
import io.modelmerge.registry.model.RequestNames;
import io.modelmerge.registry.service.CreateModelRequest;
import io.modelmerge.registry.service.RegisterVersionRequest;
import io.modelmerge.registry.service.Registry;
import io.modelmerge.registry.service.VersionRegistration;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.DELETE;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.PATCH;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.PUT;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.net.URI;
import java.util.List;

/** Models, their versions and aliases: {@code /api/v1/models}. Maps HTTP to {@link Registry} calls, nothing more. */
@Path("/api/v1/models")
@Produces(MediaType.APPLICATION_JSON)
@Consumes(MediaType.APPLICATION_JSON)
public class ModelResource {
    private final Registry registry;
    private final VersionRegistration registration;
    /** Who is calling: what each method may do is checked against its token, and it is recorded as the actor. */
    private final Caller caller;

    public ModelResource(Registry registry, VersionRegistration registration, Caller caller) {
        this.registry = registry;
        this.registration = registration;
        this.caller = caller;
    }

    @POST
    public Response create(CreateModelRequest request) {
        caller.require(Scope.WRITE, RequestNames.model("name", required(request).name()).toString());
        ModelView model = Views.of(registry.createModel(required(request)));
        return Response.created(URI.create("/api/v1/models/" + model.name())).entity(model).build();
    }

    @GET
    public Page<ModelView> search(@QueryParam("query") String query, @QueryParam("tag") List<String> tags,
                                  @QueryParam("page") String page, @QueryParam("page_size") String pageSize) {
        Identity me = caller.identity();
        caller.requireScope(Scope.READ);
        return Views.page(registry.searchModels(query, tags, me.readsEverything() ? null : me.namespaces(),
                integer("page", page, 1),
                integer("page_size", pageSize, 50)), Views::of);
    }

    @GET
    @Path("{ns}/{name}")
    public ModelView get(@PathParam("ns") String ns, @PathParam("name") String name) {
        caller.require(Scope.READ, name(ns, name).toString());
        return Views.of(registry.model(name(ns, name)));
    }

    @PATCH
    @Path("{ns}/{name}")
    @Consumes({MediaType.APPLICATION_JSON, "application/merge-patch+json"})
    public ModelView patch(@PathParam("ns") String ns, @PathParam("name") String name, JsonNode patch) {
        caller.require(Scope.WRITE, name(ns, name).toString());
        return Views.of(registry.patchModel(name(ns, name), patch));
    }

    @DELETE
    @Path("{ns}/{name}")
    public Response delete(@PathParam("ns") String ns, @PathParam("name") String name) {
        caller.require(Scope.ADMIN, name(ns, name).toString());
        registry.deleteModel(name(ns, name));
        return Response.noContent().build();
    }

    /**
     * 201 with the new version, or 200 with the existing one when the same content was registered before. With
     * {@code create_model} a missing model is created in the same transaction; without it, a 404.
     */
    @POST
    @Path("{ns}/{name}/versions")
    public Response register(@PathParam("ns") String ns, @PathParam("name") String name,
                             RegisterVersionRequest request) {
        caller.require(Scope.WRITE, name(ns, name).toString());
        List<RegisterVersionRequest.ParentRequest> parents = required(request).parents();
        for (int i = 0; parents != null && i < parents.size(); i++) {
            if (parents.get(i) != null && parents.get(i).ref() != null) {
                caller.require(Scope.READ, RequestNames.ref("parents[" + i + "].ref", parents.get(i).ref()).model()
                        .toString());
            }
        }
        var result = registration.register(name(ns, name), request, caller.name());
        VersionView version = Views.of(result.version());
        if (!result.created()) {
            return Response.ok(version).build();
        }
        return Response.created(URI.create("/api/v1/models/" + version.model() + "/versions/" + version.version()))
                .entity(version).build();
    }

    @GET
    @Path("{ns}/{name}/versions")
    public Page<VersionView> versions(@PathParam("ns") String ns, @PathParam("name") String name,
                                      @QueryParam("page") String page, @QueryParam("page_size") String pageSize) {
        caller.require(Scope.READ, name(ns, name).toString());
        return Views.page(registry.versions(name(ns, name), integer("page", page, 1),
                integer("page_size", pageSize, 50)), Views::of);
    }

    @GET
    @Path("{ns}/{name}/versions/{version}")
    public VersionView version(@PathParam("ns") String ns, @PathParam("name") String name,
                               @PathParam("version") String version) {
        caller.require(Scope.READ, name(ns, name).toString());
        return Views.of(registry.version(name(ns, name), number(version)));
    }

    @GET
    @Path("{ns}/{name}/versions/{version}/files")
    public List<FileView> files(@PathParam("ns") String ns, @PathParam("name") String name,
                                @PathParam("version") String version) {
        caller.require(Scope.READ, name(ns, name).toString());
        return Views.files(registry.files(name(ns, name), number(version)));
    }

    @GET
    @Path("{ns}/{name}/versions/{version}/lineage")
    public LineageView lineage(@PathParam("ns") String ns, @PathParam("name") String name,
                               @PathParam("version") String version,
                               @QueryParam("depth") String depth) {
        caller.require(Scope.READ, name(ns, name).toString());
        return Views.of(registry.lineage(name(ns, name), number(version), integer("depth", depth, 10)));
    }

    @GET
    @Path("{ns}/{name}/versions/{version}/children")
    public List<LineageView.Edge> children(@PathParam("ns") String ns, @PathParam("name") String name,
                                           @PathParam("version") String version) {
        caller.require(Scope.READ, name(ns, name).toString());
        return Views.edges(registry.children(name(ns, name), number(version)));
    }

    @GET
    @Path("{ns}/{name}/aliases")
    public List<AliasView> aliases(@PathParam("ns") String ns, @PathParam("name") String name) {
        caller.require(Scope.READ, name(ns, name).toString());
        return registry.aliases(name(ns, name)).stream().map(Views::of).toList();
    }

    @GET
    @Path("{ns}/{name}/aliases/{alias}")
    public AliasView alias(@PathParam("ns") String ns, @PathParam("name") String name,
                           @PathParam("alias") String alias) {
        caller.require(Scope.READ, name(ns, name).toString());
        return Views.of(registry.alias(name(ns, name), alias));
    }

    @PUT
    @Path("{ns}/{name}/aliases/{alias}")
    public AliasView moveAlias(@PathParam("ns") String ns, @PathParam("name") String name,
                               @PathParam("alias") String alias, MoveAliasRequest request) {
        caller.requireAlias(name(ns, name).toString(), alias);
        return Views.of(registry.moveAlias(name(ns, name), alias, required(request).version(), caller.name()));
    }

    @DELETE
    @Path("{ns}/{name}/aliases/{alias}")
    public Response deleteAlias(@PathParam("ns") String ns, @PathParam("name") String name,
                                @PathParam("alias") String alias) {
        caller.requireAlias(name(ns, name).toString(), alias);
        registry.deleteAlias(name(ns, name), alias, caller.name());
        return Response.noContent().build();
    }

    static ModelName name(String namespace, String name) {
        return RequestNames.model("name", namespace + "/" + name);
    }

    static <T> T required(T body) {
        if (body == null) {
            throw RegistryException.badRequest("body", "a JSON body is required");
        }
        return body;
    }

    /**
     * A whole-number query parameter, {@code fallback} when absent. (Declared as String: JAX-RS answers a
     * malformed int query parameter with a bare 404.)
     */
    static int integer(String field, String value, int fallback) {
        if (value == null || value.isBlank()) {
            return fallback;
        }
        try {
            return Integer.parseInt(value.strip());
        } catch (NumberFormatException e) {
            throw RegistryException.badRequest(field, "must be a whole number, got '"
                    + (value.length() > 40 ? value.substring(0, 40) + "..." : value) + "'");
        }
    }

    private static int number(String version) {
        try {
            int number = Integer.parseInt(version);
            if (number >= 1) {
                return number;
            }
        } catch (NumberFormatException e) {
            // answered below
        }
        throw RegistryException.badRequest("version", "'" + version + "' is not a version number; use /resolve for aliases");
    }
}
