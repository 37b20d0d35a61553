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
 * takes effect here within that time. While the registry cannot be reached, an answer up to {@link #OUTAGE} old
 * still counts: a registry restart does not lock out the callers of jobs that keep running meanwhile (a token
 * the registry refuses is refused at once).
 */
@ApplicationScoped
public class Callers {
    static final Duration REMEMBERED = Duration.ofSeconds(10);
    static final Duration OUTAGE = Duration.ofMinutes(5);

    /** An answer, asked at {@code asked} (System.nanoTime()). */
    private record Known(Identity identity, long asked) {
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
        if (token.isEmpty()) { // a registry token (mm_...) or an identity provider's JWT: the registry tells
            throw new JobException(JobException.Kind.UNAUTHENTICATED, "the authorization metadata is not 'Bearer <token>'");
        }
        String key = HexFormat.of().formatHex(ApiTokens.sha256(token));
        long now = System.nanoTime();
        Known hit = known.get(key);
        if (hit != null && now - hit.asked() < REMEMBERED.toNanos()) {
            return hit.identity();
        }
        Identity identity;
        try {
            identity = registry.withToken(token).self();
        } catch (RegistryClient.RegistryError e) {
            if (e.status() == 401) {
                known.remove(key);
                throw new JobException(JobException.Kind.UNAUTHENTICATED, e.getMessage());
            }
            return whileUnreachable(hit, now, "the registry could not check the token: " + e.getMessage());
        } catch (IOException e) {
            return whileUnreachable(hit, now, "the registry could not be reached to check the token ("
                    + e.getMessage() + ")");
        }
        if (known.size() > 10_000) {
            known.clear();
        }
        known.put(key, new Known(identity, now));
        return identity;
    }

    /** The last answer, if it is recent enough to stand in for the registry's; else UNAVAILABLE. */
    private static Identity whileUnreachable(Known last, long now, String why) {
        if (last != null && now - last.asked() < OUTAGE.toNanos()) {
            return last.identity();
        }
        throw new JobException(JobException.Kind.UNAVAILABLE, why);
    }
}
