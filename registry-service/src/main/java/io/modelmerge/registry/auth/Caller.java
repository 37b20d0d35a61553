package io.modelmerge.registry.auth;

import io.modelmerge.registry.client.Identity;
import io.modelmerge.registry.client.Scope;
import io.modelmerge.registry.model.RegistryException;
import jakarta.enterprise.context.RequestScoped;

/** Who makes the current request (set by {@link TokenFilter}), and the checks of what it may do: 403 if not. */
@RequestScoped
public class Caller {
    /** Until the filter has run: no scopes at all. */
    private Identity identity = new Identity("", "nobody", java.util.Set.of(), java.util.List.of(), java.util.List.of());

    void set(Identity identity) {
        this.identity = identity;
    }

    public Identity identity() {
        return identity;
    }

    /** The name recorded as created_by and moved_by. */
    public String name() {
        return identity.name();
    }

    /** The scope somewhere: what it covers is applied by the request itself (a search shows only those models). */
    public void requireScope(Scope scope) {
        if (!identity.has(scope)) {
            throw refused(scope.label());
        }
    }

    public void require(Scope scope, String model) {
        if (!identity.may(scope, model)) {
            throw refused(scope.label() + " " + model);
        }
    }

    public void requireNamespace(Scope scope, String namespace) {
        if (!identity.mayInNamespace(scope, namespace)) {
            throw refused(scope.label() + " in namespace " + namespace);
        }
    }

    public void requireAlias(String model, String alias) {
        if (!identity.mayMoveAlias(model, alias)) {
            throw refused("move alias '" + alias + "' of " + model);
        }
    }

    /** Admin over every namespace: tokens are managed here. */
    public void requireAdmin() {
        if (!identity.has(Scope.ADMIN)) {
            throw refused("administer tokens");
        }
    }

    private RegistryException refused(String what) {
        return RegistryException.forbidden("token '" + identity.name() + "' may not " + what + " (scopes "
                + identity.scopes().stream().map(Scope::label).sorted().toList() + " on " + identity.namespaces()
                + (identity.aliases().isEmpty() ? "" : ", aliases " + identity.aliases()) + ")");
    }
}
