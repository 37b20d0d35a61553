package io.modelmerge.registry;

import io.modelmerge.registry.client.ApiTokens;
import io.modelmerge.service.local.EmbeddedDatabase;
import io.modelmerge.storage.testing.S3ProxyServer;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.restassured.RestAssured;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.util.Base64;
import java.util.Comparator;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The real parts the registry runs on in tests: the embedded PostgreSQL it uses by default (a fresh cluster) and
 * an S3Proxy server with a bucket {@code models}, both on free 127.0.0.1 ports, plus a local blob root; and the
 * first admin token, which every request of the tests carries by default.
 */
public class RegistryTestResources implements QuarkusTestResourceLifecycleManager {
    public static final String BUCKET = "models";
    /** The installation's first admin token; every request of the tests carries it unless a test says otherwise. */
    public static final String ADMIN_TOKEN = ApiTokens.mint();
    /** The key pair of an identity provider made up for the tests; the registry trusts its public half. */
    public static final KeyPair IDENTITY_PROVIDER = keyPair();
    public static final String ISSUER = "https://idp.example.test";

    private Path dataDir;
    private EmbeddedPostgres postgres;
    private S3ProxyServer s3;

    @Override
    public Map<String, String> start() {
        try {
            dataDir = Files.createTempDirectory("registry-test-");
            Files.createDirectories(dataDir.resolve("blobs"));
            postgres = EmbeddedDatabase.start(dataDir.resolve("registry-db"));
            s3 = S3ProxyServer.start(dataDir.resolve("s3"), BUCKET);
        } catch (Exception e) {
            throw new IllegalStateException("Could not start the registry's test servers: " + e.getMessage(), e);
        }
        // a filter, not a request specification: that would carry a port of its own over Quarkus' test port
        RestAssured.replaceFiltersWith((request, response, context) -> {
            if (!request.getHeaders().hasHeaderWithName("Authorization")) {
                request.header("Authorization", "Bearer " + ADMIN_TOKEN);
            }
            return context.next(request, response);
        });
        Path publicKey = dataDir.resolve("identity-provider.pem");
        try {
            Files.writeString(publicKey, "-----BEGIN PUBLIC KEY-----\n" + Base64.getMimeEncoder(64, "\n".getBytes())
                    .encodeToString(IDENTITY_PROVIDER.getPublic().getEncoded()) + "\n-----END PUBLIC KEY-----\n");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return Map.ofEntries(
                Map.entry("modelmerge.registry.auth.bootstrap-token", ADMIN_TOKEN),
                Map.entry("mp.jwt.verify.publickey.location", publicKey.toString()),
                Map.entry("mp.jwt.verify.issuer", ISSUER),
                // webhook retries in fractions of a second, not seconds
                Map.entry("modelmerge.registry.webhooks.retry-base", "PT0.2S"),
                Map.entry("modelmerge.registry.webhooks.max-backoff", "PT1S"),
                Map.entry("modelmerge.registry.webhooks.poll-interval", "PT0.1S"),
                Map.entry("quarkus.datasource.jdbc.url", postgres.getJdbcUrl("postgres", "postgres")),
                Map.entry("quarkus.datasource.username", "postgres"),
                Map.entry("modelmerge.registry.data-dir", dataDir.toString()),
                Map.entry("modelmerge.registry.s3.endpoint", s3.endpoint().toString()),
                Map.entry("modelmerge.registry.s3.access-key-id", S3ProxyServer.ACCESS_KEY),
                Map.entry("modelmerge.registry.s3.secret-access-key", S3ProxyServer.SECRET_KEY));
    }

    private static KeyPair keyPair() {
        try {
            KeyPairGenerator generator = KeyPairGenerator.getInstance("RSA");
            generator.initialize(2048);
            return generator.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void stop() {
        try {
            if (s3 != null) {
                s3.close();
            }
            if (postgres != null) {
                postgres.close();
            }
            if (dataDir != null) {
                try (Stream<Path> paths = Files.walk(dataDir)) {
                    for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                        Files.deleteIfExists(path);
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
