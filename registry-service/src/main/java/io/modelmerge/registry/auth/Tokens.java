package io.modelmerge.registry.auth;

import io.modelmerge.registry.RegistryConfig;
import io.modelmerge.registry.client.ApiTokens;
import io.modelmerge.registry.client.Identity;
import io.modelmerge.registry.client.Scope;
import io.modelmerge.registry.db.TokenRow;
import io.modelmerge.registry.db.TokenTable;
import io.modelmerge.registry.model.RegistryException;
import io.modelmerge.service.db.Database;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.PreparedStatement;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * API tokens: made (shown once), listed (without secrets), revoked, and checked on every request. A fresh
 * installation gets a first admin token at start-up.
 */
@ApplicationScoped
public class Tokens {
    /** A model ({@code ns/name}), a namespace's models ({@code ns/*}) or all ({@code *}). */
    private static final Pattern GRANT = Pattern.compile("\\*|[a-z0-9][a-z0-9._-]{0,63}/(\\*|[A-Za-z0-9][A-Za-z0-9._-]{0,127})");
    private static final Pattern ALIAS = Pattern.compile("[a-z][a-z0-9._-]{0,63}");
    /** Compared against when the id names no token, so an unknown id costs the same as a wrong secret. */
    private static final byte[] NOTHING = ApiTokens.sha256("");

    private final Database db;
    private final RegistryConfig config;

    public Tokens(Database db, RegistryConfig config) {
        this.db = db;
        this.config = config;
    }

    /** A new token, and the token itself, which is not stored and cannot be shown again. */
    public record Created(TokenRow row, String token) {
    }

    /**
     * Makes a token for {@code creator}: it may grant only scopes and namespaces it holds itself (an admin of
     * {@code team/*} makes tokens for {@code team/*}).
     */
    public Created create(Identity creator, String name, List<String> scopes, List<String> namespaces,
                          List<String> aliases, OffsetDateTime expiresAt) {
        if (name == null || name.isBlank() || name.length() > 128) {
            throw RegistryException.badRequest("name", "1 to 128 characters are required");
        }
        if (scopes == null || scopes.isEmpty()) {
            throw RegistryException.badRequest("scopes", "at least one of read, write, promote, submit, admin");
        }
        Set<Scope> granted = EnumSet.noneOf(Scope.class);
        for (String scope : scopes) {
            try {
                granted.add(Scope.parse(scope));
            } catch (IllegalArgumentException e) {
                throw RegistryException.badRequest("scopes", e.getMessage());
            }
        }
        List<String> grants = namespaces == null || namespaces.isEmpty() ? List.of() : List.copyOf(namespaces);
        if (grants.isEmpty()) {
            throw RegistryException.badRequest("namespaces", "at least one grant: '*', 'team/*' or 'team/model'");
        }
        for (String grant : grants) {
            if (!GRANT.matcher(grant).matches()) {
                throw RegistryException.badRequest("namespaces", "'" + grant + "' is not '*', 'team/*' or 'team/model'");
            }
            if (!creator.coversPattern(grant)) {
                throw RegistryException.forbidden("token '" + creator.name() + "' may not grant '" + grant
                        + "': it holds " + creator.namespaces());
            }
        }
        List<String> promoted = aliases == null ? List.of() : List.copyOf(aliases);
        for (String alias : promoted) {
            if (!ALIAS.matcher(alias).matches()) {
                throw RegistryException.badRequest("aliases", "'" + alias + "' is not an alias name");
            }
        }
        if (expiresAt != null && !expiresAt.isAfter(OffsetDateTime.now())) {
            throw RegistryException.badRequest("expires_at", "must lie in the future, got " + expiresAt);
        }
        String token = ApiTokens.mint();
        String id = ApiTokens.id(token).orElseThrow();
        TokenRow row = db.transaction(c -> TokenTable.insert(c, id, name, ApiTokens.sha256(token),
                granted.stream().map(Scope::label).toList(), grants, promoted, creator.name(), expiresAt));
        return new Created(row, token);
    }

    /** The tokens whose every grant {@code admin}'s grants cover. */
    public List<TokenRow> list(Identity admin) {
        return db.read(TokenTable::all).stream().filter(row -> governs(admin, row)).toList();
    }

    /** Revokes token {@code id}, if {@code admin}'s grants cover all of its grants (as for {@link #list}). */
    public void revoke(Identity admin, String id) {
        TokenRow row = db.read(c -> TokenTable.find(c, id))
                .filter(found -> governs(admin, found))
                .orElseThrow(() -> RegistryException.notFound("No token " + id + " among those '" + admin.name()
                        + "' administers"));
        if (!db.transaction(c -> TokenTable.revoke(c, row.id()))) {
            throw RegistryException.conflict("token " + id + " was revoked before");
        }
    }

    private static boolean governs(Identity admin, TokenRow row) {
        return row.namespaces().stream().allMatch(admin::coversPattern);
    }

    /**
     * Who {@code token} is; 401 when it is not a token, unknown, revoked or expired (the message says which,
     * never the token).
     */
    public Identity authenticate(String token) {
        Optional<String> id = ApiTokens.id(token);
        if (id.isEmpty()) {
            throw RegistryException.unauthorized("the bearer token is not a modelmerge token (mm_<id>_<secret>)");
        }
        Optional<TokenRow> found = db.read(c -> TokenTable.find(c, id.get()));
        boolean matches = ApiTokens.matches(token, found.map(TokenRow::secretSha256).orElse(NOTHING));
        if (found.isEmpty() || !matches) {
            throw RegistryException.unauthorized("token " + id.get() + " is not known here");
        }
        TokenRow row = found.get();
        if (row.revokedAt() != null) {
            throw RegistryException.unauthorized("token " + row.id() + " was revoked at " + row.revokedAt());
        }
        if (row.expiresAt() != null && !row.expiresAt().isAfter(OffsetDateTime.now())) {
            throw RegistryException.unauthorized("token " + row.id() + " expired at " + row.expiresAt());
        }
        // the row just read says whether the minute-grained last use is due: most requests write nothing
        if (row.lastUsedAt() == null || row.lastUsedAt().isBefore(OffsetDateTime.now().minusMinutes(1))) {
            db.transaction(c -> {
                TokenTable.used(c, row.id());
                return null;
            });
        }
        return identity(row);
    }

    static Identity identity(TokenRow row) {
        List<Scope> scopes = new ArrayList<>();
        for (String scope : row.scopes()) {
            scopes.add(Scope.parse(scope));
        }
        return new Identity(row.id(), row.name(), Set.copyOf(scopes), row.namespaces(), row.aliases());
    }

    /**
     * A fresh installation (no token at all) gets its first admin token: the configured one, or a new one that is
     * printed once here and written to the data directory's {@code admin-token}. Replicas starting together make
     * one: the check and the insert hold a transaction-wide lock.
     */
    void bootstrap(@Observes StartupEvent start) {
        Optional<String> configured = config.auth().bootstrapToken().filter(t -> !t.isBlank());
        if (configured.isPresent() && ApiTokens.id(configured.get()).isEmpty()) {
            throw new IllegalStateException("modelmerge.registry.auth.bootstrap-token is not of the form"
                    + " mm_<id>_<secret> (mergectl token mint makes one)");
        }
        String token = configured.orElseGet(ApiTokens::mint);
        boolean made = db.transaction(c -> {
            try (PreparedStatement lock = c.prepareStatement("SELECT pg_advisory_xact_lock(4242001)")) {
                lock.execute();
            }
            if (TokenTable.any(c)) {
                return false;
            }
            TokenTable.insert(c, ApiTokens.id(token).orElseThrow(), "admin", ApiTokens.sha256(token),
                    List.of(Scope.ADMIN.label()), List.of("*"), List.of(), "installation", null);
            return true;
        });
        if (made && configured.isEmpty()) {
            Path file = config.dataDir().resolve(ApiTokens.LOCAL_FILE);
            try {
                Files.createDirectories(config.dataDir());
                Files.deleteIfExists(file);
                Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
                Files.writeString(file, token + "\n");
            } catch (IOException e) {
                throw new UncheckedIOException("could not write the first admin token to " + file, e);
            }
            // printed once, on purpose, outside the log: it is shown nowhere else
            System.out.println("modelmerge registry: the first admin token of this installation (shown once;"
                    + " also in " + file + "):\n  " + token);
        }
    }
}
