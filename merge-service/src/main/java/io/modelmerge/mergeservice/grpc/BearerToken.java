package io.modelmerge.mergeservice.grpc;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.quarkus.grpc.GlobalInterceptor;
import jakarta.enterprise.context.ApplicationScoped;

/**
 * Hands each call's bearer token ({@code authorization: Bearer <token>}) to the service in the gRPC context. It
 * refuses nothing itself: the service's methods authenticate (so health and reflection stay open), on their
 * worker threads, not on the event loop.
 */
@ApplicationScoped
@GlobalInterceptor
public class BearerToken implements ServerInterceptor {
    static final Context.Key<String> TOKEN = Context.key("modelmerge-bearer-token");
    private static final Metadata.Key<String> AUTHORIZATION =
            Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

    @Override
    public <Q, A> ServerCall.Listener<Q> interceptCall(ServerCall<Q, A> call, Metadata headers,
                                                       ServerCallHandler<Q, A> next) {
        String header = headers.get(AUTHORIZATION);
        String token = header != null && header.regionMatches(true, 0, "Bearer ", 0, 7) ? header.substring(7).strip()
                : header == null ? null : "";
        return Contexts.interceptCall(Context.current().withValue(TOKEN, token), call, headers, next);
    }
}
