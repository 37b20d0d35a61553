package io.modelmerge.registry.auth;

import io.modelmerge.registry.RegistryConfig;
import io.modelmerge.registry.client.ApiTokens;
import io.modelmerge.registry.client.Identity;
import io.modelmerge.registry.model.RegistryException;
import jakarta.ws.rs.container.ContainerRequestContext;
import jakarta.ws.rs.core.HttpHeaders;
import java.util.Locale;
import org.jboss.resteasy.reactive.server.ServerRequestFilter;

/**
 * Authenticates every API request by its bearer token, one of ours or, where an identity provider is configured,
 * its JWT: 401 without a valid one (a GET may go without, as anonymous, where anonymous reading is on). Health,
 * metrics and the OpenAPI document stay open.
 */
public class TokenFilter {
    private final Tokens tokens;
    private final IdentityProviderTokens jwts;
    private final Caller caller;
    private final RegistryConfig config;

    public TokenFilter(Tokens tokens, IdentityProviderTokens jwts, Caller caller, RegistryConfig config) {
        this.tokens = tokens;
        this.jwts = jwts;
        this.caller = caller;
        this.config = config;
    }

    @ServerRequestFilter
    public void authenticate(ContainerRequestContext request) {
        if (!request.getUriInfo().getPath().startsWith("/api/")) {
            return;
        }
        String header = request.getHeaderString(HttpHeaders.AUTHORIZATION);
        if (header == null || header.isBlank()) {
            if (config.auth().anonymousRead() && request.getMethod().equals("GET")) {
                caller.set(Identity.ANONYMOUS);
                return;
            }
            throw RegistryException.unauthorized("a token is required: Authorization: Bearer <token>");
        }
        if (!header.regionMatches(true, 0, "Bearer ", 0, 7)) {
            throw RegistryException.unauthorized("the Authorization header is not 'Bearer <token>' (scheme "
                    + header.split(" ", 2)[0].toLowerCase(Locale.ROOT) + ")");
        }
        String token = header.substring(7).strip();
        boolean ours = ApiTokens.id(token).isPresent();
        caller.set(ours || !jwts.configured() ? tokens.authenticate(token) : jwts.authenticate(token));
    }
}
