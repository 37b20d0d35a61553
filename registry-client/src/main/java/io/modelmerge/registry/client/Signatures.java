package io.modelmerge.registry.client;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * How modelmerge signs what it sends to a receiver's URL (webhook deliveries, evaluation requests): HMAC-SHA256,
 * keyed with the shared secret, over {@code <timestamp>.<body>}, sent as
 * {@code X-Modelmerge-Signature: sha256=<hex>} beside {@code X-Modelmerge-Timestamp: <unix seconds>}. A receiver
 * recomputes it and compares in constant time, and refuses an old timestamp (a replayed capture).
 */
public final class Signatures {
    private Signatures() {
    }

    public static String sign(String secret, long timestamp, String body) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            return "sha256=" + HexFormat.of().formatHex(mac.doFinal((timestamp + "." + body)
                    .getBytes(StandardCharsets.UTF_8)));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }
}
