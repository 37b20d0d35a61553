package io.modelmerge.registry.client;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The form of a token: {@code mm_<id>_<secret>}, a public id of 10 characters (how the registry finds the
 * token's row, and how it is named in lists and logs) and 32 random bytes. Only its SHA-256 is stored.
 */
public final class ApiTokens {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final Pattern FORM = Pattern.compile("mm_([a-z0-9]{10})_[A-Za-z0-9_-]{43}");
    private static final char[] ID_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789".toCharArray();

    /**
     * Where in its data directory the registry writes the first admin token it made itself; the merge service and
     * mergectl of the local setup, on the same data directory, call with it.
     */
    public static final String LOCAL_FILE = "admin-token";

    private ApiTokens() {
    }

    /** The token the registry wrote to {@code dataDir}, if it did and it can be read. */
    public static Optional<String> readLocal(Path dataDir) throws IOException {
        Path file = dataDir.resolve(LOCAL_FILE);
        return Files.isReadable(file) ? Optional.of(Files.readString(file).strip()) : Optional.empty();
    }

    /** A new random token. */
    public static String mint() {
        char[] id = new char[10];
        for (int i = 0; i < id.length; i++) {
            id[i] = ID_CHARACTERS[RANDOM.nextInt(ID_CHARACTERS.length)];
        }
        byte[] secret = new byte[32];
        RANDOM.nextBytes(secret);
        return "mm_" + new String(id) + "_" + Base64.getUrlEncoder().withoutPadding().encodeToString(secret);
    }

    /** The token's public id, or empty when {@code token} does not have a token's form. */
    public static Optional<String> id(String token) {
        var matcher = FORM.matcher(token);
        return matcher.matches() ? Optional.of(matcher.group(1)) : Optional.empty();
    }

    public static byte[] sha256(String token) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.US_ASCII));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Whether {@code token} hashes to {@code stored}, in time that does not depend on where they differ. */
    public static boolean matches(String token, byte[] stored) {
        return MessageDigest.isEqual(sha256(token), stored);
    }
}
