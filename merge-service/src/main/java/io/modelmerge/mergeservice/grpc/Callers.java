package io.modelmerge.mergeservice.grpc;

import io.modelmerge.mergeservice.jobs.JobException;
import io.modelmerge.registry.client.ApiTokens;
import io.modelmerge.registry.client.Identity;
import io.modelmerge.registry.client.RegistryClient;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Who calls the merge service: the registry says, for the token the call carries ({@code GET /tokens/self}).
 * Asking the registry, rather than checking signed tokens here, keeps one place that issues, revokes and expires
 * tokens; an answer is kept for {@link #REMEMBERED} (by the token's SHA-256, never the token), so a revocation
 * takes effect here within that time.
 */
@ApplicationScoped
public class Callers {
    static final Duration REMEMBERED = Duration.ofSeconds(10);

    private record Known(Identity identity, long until) {
    }

    private final RegistryClient registry;
    private final Map<String, Known> known = new ConcurrentHashMap<>();

    public Callers(RegistryClient registry) {
        this.registry = registry;
    }

    /** The caller of the current gRPC call; UNAUTHENTICATED without a valid token. */
    public Identity current() {
        String token = BearerToken.TOKEN.get();
        if (token == null) {
            throw new JobException(JobException.Kind.UNAUTHENTICATED,
                    "a token is required: metadata 'authorization: Bearer <token>'");
        }
        if (ApiTokens.id(token).isEmpty()) {
            throw new JobException(JobException.Kind.UNAUTHENTICATED,
                    "the authorization metadata is not 'Bearer mm_<id>_<secret>'");
        }
        String key = HexFormat.of().formatHex(ApiTokens.sha256(token));
        long now = System.nanoTime();
        Known hit = known.get(key);
        if (hit != null && now - hit.until() < 0) {
            return hit.identity();
        }
        Identity identity;
        try {
            identity = registry.withToken(token).self();
        } catch (RegistryClient.RegistryError e) {
            if (e.status() == 401) {
                throw new JobException(JobException.Kind.UNAUTHENTICATED, e.getMessage());
            }
            throw new JobException(JobException.Kind.UNAVAILABLE, "the registry could not check the token: "
                    + e.getMessage());
        } catch (IOException e) {
            throw new JobException(JobException.Kind.UNAVAILABLE, "the registry could not be reached to check the"
                    + " token (" + e.getMessage() + ")");
        }
        if (known.size() > 10_000) {
            known.clear();
        }
        known.put(key, new Known(identity, now + REMEMBERED.toNanos()));
        return identity;
    }
}
