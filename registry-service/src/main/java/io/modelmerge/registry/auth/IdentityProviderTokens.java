package io.modelmerge.registry.auth;

import io.modelmerge.registry.client.Identity;
import io.modelmerge.registry.client.Scope;
import io.modelmerge.registry.model.RegistryException;
import io.smallrye.jwt.auth.principal.JWTParser;
import io.smallrye.jwt.auth.principal.ParseException;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.json.JsonArray;
import jakarta.json.JsonString;
import java.util.ArrayList;
import java.util.Collection;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.eclipse.microprofile.jwt.JsonWebToken;

/**
 * Bearer JWTs issued by an organisation's identity provider (OIDC), where one is configured: the signature,
 * issuer and expiry checked by SmallRye JWT ({@code mp.jwt.verify.publickey.location}: the provider's JWKS URL
 * or a PEM key; {@code mp.jwt.verify.issuer}), then the claims read as a token's grants: the name from
 * {@code preferred_username} (else {@code sub}), the scopes from {@code scope} (space-separated; others ignored),
 * the models from {@code modelmerge_namespaces} and, for promote, {@code modelmerge_aliases}.
 */
@ApplicationScoped
public class IdentityProviderTokens {
    private final JWTParser parser;
    private final boolean configured;

    public IdentityProviderTokens(JWTParser parser,
                                  @ConfigProperty(name = "mp.jwt.verify.publickey.location") Optional<String> keys,
                                  @ConfigProperty(name = "mp.jwt.verify.publickey") Optional<String> key) {
        this.parser = parser;
        this.configured = keys.isPresent() || key.isPresent();
    }

    public boolean configured() {
        return configured;
    }

    /** Who the JWT {@code token} says the caller is; 401 if it does not verify (the reason, never the token). */
    public Identity authenticate(String token) {
        JsonWebToken jwt;
        try {
            jwt = parser.parse(token);
        } catch (ParseException e) {
            throw RegistryException.unauthorized("the bearer token is neither a modelmerge token nor a JWT this"
                    + " registry accepts (" + reason(e) + ")");
        }
        Set<Scope> scopes = EnumSet.noneOf(Scope.class);
        String scope = jwt.getClaim("scope");
        for (String s : scope == null ? new String[0] : scope.split(" ")) {
            try {
                scopes.add(Scope.parse(s));
            } catch (IllegalArgumentException other) {
                // an identity provider's own scopes (openid, profile, ...) are not ours
            }
        }
        String name = jwt.getClaim("preferred_username") != null ? jwt.getClaim("preferred_username") : jwt.getSubject();
        return new Identity("jwt:" + (jwt.getTokenID() != null ? jwt.getTokenID() : jwt.getSubject()), name, scopes,
                strings(jwt.getClaim("modelmerge_namespaces")), strings(jwt.getClaim("modelmerge_aliases")));
    }

    private static List<String> strings(Object claim) {
        List<String> values = new ArrayList<>();
        if (claim instanceof JsonArray array) {
            array.forEach(v -> values.add(v instanceof JsonString s ? s.getString() : v.toString()));
        } else if (claim instanceof Collection<?> collection) {
            collection.forEach(v -> values.add(String.valueOf(v)));
        } else if (claim != null) {
            values.add(String.valueOf(claim));
        }
        return values;
    }

    /** Why the JWT was refused, in a few words: never the parser's message, which quotes the token. */
    private static String reason(ParseException e) {
        StringBuilder messages = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            messages.append(' ').append(t.getMessage());
        }
        String all = messages.toString().toLowerCase(Locale.ROOT);
        return all.contains("expir") ? "it has expired"
                : all.contains("signature") ? "its signature does not verify with the identity provider's key"
                : all.contains("iss") ? "it is from another issuer"
                : "it does not verify";
    }
}
