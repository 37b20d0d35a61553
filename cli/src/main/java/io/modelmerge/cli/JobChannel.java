package io.modelmerge.cli;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.modelmerge.proto.v1.MergeServiceGrpc;
import java.util.concurrent.TimeUnit;

/** A plaintext gRPC channel to the merge service, closed after the command. */
final class JobChannel implements AutoCloseable {
    private final ManagedChannel channel;

    JobChannel(String address) {
        this.channel = ManagedChannelBuilder.forTarget(address).usePlaintext().build();
    }

    MergeServiceGrpc.MergeServiceBlockingStub stub() {
        return MergeServiceGrpc.newBlockingStub(channel);
    }

    @Override
    public void close() throws InterruptedException {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
}
