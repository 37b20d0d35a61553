package io.modelmerge.registry.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** What a token's scopes, grants and aliases let it do, and the form of a token. */
class IdentityTest {
    private static Identity token(Set<Scope> scopes, List<String> grants, List<String> aliases) {
        return new Identity("abcdefghij", "t", scopes, grants, aliases);
    }

    @Test
    void grantsCoverTheirNamespaceTheirModelOrEverything() {
        Identity team = token(Set.of(Scope.WRITE), List.of("team/*", "other/one"), List.of());
        assertTrue(team.may(Scope.WRITE, "team/llama"));
        assertTrue(team.may(Scope.WRITE, "other/one"));
        assertFalse(team.may(Scope.WRITE, "other/two"));
        assertFalse(team.may(Scope.WRITE, "teams/llama"), "a grant is a namespace, not a prefix");
        assertTrue(team.coversPattern("team/*"));
        assertFalse(team.coversPattern("other/*"));
        assertFalse(team.coversPattern("*"));
        assertTrue(token(Set.of(Scope.READ), List.of("*"), List.of()).coversPattern("anything/*"));
        assertTrue(team.mayInNamespace(Scope.WRITE, "team"));
        assertFalse(team.mayInNamespace(Scope.WRITE, "other"), "one model of a namespace is not the namespace");
    }

    @Test
    void everyScopeReadsAdminDoesAllAndPromoteIsLimitedToItsAliases() {
        Identity promote = token(Set.of(Scope.PROMOTE), List.of("team/*"), List.of("nightly"));
        assertTrue(promote.may(Scope.READ, "team/m"));
        assertFalse(promote.may(Scope.WRITE, "team/m"));
        assertTrue(promote.mayMoveAlias("team/m", "nightly"));
        assertFalse(promote.mayMoveAlias("team/m", "prod"));
        Identity admin = token(Set.of(Scope.ADMIN), List.of("team/*"), List.of("nightly"));
        assertTrue(admin.may(Scope.SUBMIT, "team/m"));
        assertTrue(admin.mayMoveAlias("team/m", "prod"));
        assertFalse(admin.may(Scope.READ, "other/m"));
        assertFalse(token(Set.of(), List.of("*"), List.of()).may(Scope.READ, "team/m"), "no scope, no reading");
        assertTrue(token(Set.of(Scope.READ), List.of("*"), List.of()).readsEverything());
        assertFalse(token(Set.of(Scope.READ), List.of("team/*"), List.of()).readsEverything());
    }

    @Test
    void aMintedTokenHasTheFormItsIdIsFoundByAndOnlyItMatchesItsHash() {
        String token = ApiTokens.mint();
        assertTrue(token.matches("mm_[a-z0-9]{10}_[A-Za-z0-9_-]{43}"), token.substring(0, 13));
        assertEquals(token.substring(3, 13), ApiTokens.id(token).orElseThrow());
        assertTrue(ApiTokens.matches(token, ApiTokens.sha256(token)));
        char last = token.charAt(token.length() - 1);
        String other = token.substring(0, token.length() - 1) + (last == 'x' ? 'y' : 'x');
        assertFalse(ApiTokens.matches(other, ApiTokens.sha256(token)));
        assertTrue(ApiTokens.id("Bearer " + token).isEmpty());
        assertTrue(ApiTokens.id("mm_short_x").isEmpty());
        assertEquals(Scope.PROMOTE, Scope.parse(" Promote "));
    }
}
