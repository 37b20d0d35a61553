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
 * recomputes it and compares in constant time, and refuses an old timestamp (a replayed capture): as the merge
 * service does with the scores evaluators send back to it ({@link #verify}).
 */
public final class Signatures {
    private Signatures() {
    }

    /**
     * Whether {@code signature} is {@code body}'s, signed with {@code secret} at {@code timestamp} (unix seconds, as
     * sent), no more than {@code maxAgeSeconds} from {@code nowSeconds} either way; compared in constant time.
     */
    public static boolean verify(String secret, String timestamp, String body, String signature, long nowSeconds,
                                 long maxAgeSeconds) {
        long sent;
        try {
            sent = Long.parseLong(timestamp);
        } catch (NumberFormatException e) {
            return false;
        }
        if (Math.abs(nowSeconds - sent) > maxAgeSeconds || signature == null) {
            return false;
        }
        return java.security.MessageDigest.isEqual(sign(secret, sent, body).getBytes(StandardCharsets.UTF_8),
                signature.getBytes(StandardCharsets.UTF_8));
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
