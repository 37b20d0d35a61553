package io.modelmerge.registry.client;

import java.util.List;
import java.util.Set;

/**
 * Who is calling: a token's id and name, its scopes, the models it may touch ({@code *}, {@code team/*} or
 * {@code team/model}) and, for promote, the aliases it may move (empty: any).
 */
public record Identity(String tokenId, String name, Set<Scope> scopes, List<String> namespaces, List<String> aliases) {
    /** A caller without a token where anonymous reading is on: read, everything. */
    public static final Identity ANONYMOUS = new Identity("", "anonymous", Set.of(Scope.READ), List.of("*"), List.of());

    public Identity {
        scopes = Set.copyOf(scopes);
        namespaces = List.copyOf(namespaces);
        aliases = List.copyOf(aliases);
    }

    /** Whether the token may do {@code scope} to model {@code model} ({@code ns/name}). */
    public boolean may(Scope scope, String model) {
        return has(scope) && covers(model);
    }

    /** Whether the token may do {@code scope} somewhere in namespace {@code namespace}, as a whole. */
    public boolean mayInNamespace(Scope scope, String namespace) {
        return has(scope) && coversPattern(namespace + "/*");
    }

    /** Whether the token may move or delete {@code alias} of {@code model}. */
    public boolean mayMoveAlias(String model, String alias) {
        return may(Scope.PROMOTE, model) && (scopes.contains(Scope.ADMIN) || aliases.isEmpty() || aliases.contains(alias));
    }

    /** Whether it holds {@code scope}: directly, as admin, or (for read) through any other scope. */
    public boolean has(Scope scope) {
        return scopes.contains(scope) || scopes.contains(Scope.ADMIN) || scope == Scope.READ && !scopes.isEmpty();
    }

    /** Whether one of its grants covers model {@code model}. */
    public boolean covers(String model) {
        String namespace = model.substring(0, Math.max(0, model.indexOf('/')));
        for (String grant : namespaces) {
            if (grant.equals("*") || grant.equals(model) || grant.equals(namespace + "/*")) {
                return true;
            }
        }
        return false;
    }

    /** Whether its grants cover every model that grant pattern {@code pattern} covers. */
    public boolean coversPattern(String pattern) {
        if (pattern.equals("*")) {
            return namespaces.contains("*");
        }
        if (pattern.endsWith("/*")) {
            return namespaces.contains("*") || namespaces.contains(pattern);
        }
        return covers(pattern);
    }

    /** Whether it may read every namespace (searches need no filter). */
    public boolean readsEverything() {
        return has(Scope.READ) && namespaces.contains("*");
    }
}
