package io.modelmerge.cli;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.stub.MetadataUtils;
import io.modelmerge.proto.v1.MergeServiceGrpc;
import java.util.concurrent.TimeUnit;

/** A plaintext gRPC channel to the merge service, closed after the command. */
final class JobChannel implements AutoCloseable {
    private final ManagedChannel channel;

    /**
     * A channel to the merge service at {@code address} whose calls carry {@code token} (null: none):
     * {@code host:port} in plaintext, {@code https://host:port} over TLS (trusting what the JVM trusts, e.g.
     * {@code -Djavax.net.ssl.trustStore}).
     */
    JobChannel(String address, String token) {
        ManagedChannelBuilder<?> builder = address.startsWith("https://")
                ? ManagedChannelBuilder.forTarget(address.substring("https://".length())).useTransportSecurity()
                : ManagedChannelBuilder.forTarget(address).usePlaintext();
        if (token != null) {
            Metadata bearer = new Metadata();
            bearer.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
            builder.intercept(MetadataUtils.newAttachHeadersInterceptor(bearer));
        }
        this.channel = builder.build();
    }

    MergeServiceGrpc.MergeServiceBlockingStub stub() {
        return MergeServiceGrpc.newBlockingStub(channel);
    }

    @Override
    public void close() throws InterruptedException {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
}
