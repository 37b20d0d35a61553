package io.modelmerge.registry.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class NamesAndRefsTest {

    @Test
    void modelNamesAreTwoSafeParts() {
        assertEquals(new ModelName("team", "llama-3.1_ft"), ModelName.parse("team/llama-3.1_ft"));
        for (String bad : new String[] {"team", "a/b/c", "Team/x", "team/..", "team/.hidden", "team/a..b", "/x", ""}) {
            assertThrows(InvalidNameException.class, () -> ModelName.parse(bad), bad);
        }
        InvalidNameException e = assertThrows(InvalidNameException.class, () -> ModelName.parse("team/../x"));
        assertEquals("'team/../x' is not namespace/name (exactly one '/')", e.getMessage());
        e = assertThrows(InvalidNameException.class, () -> ModelName.parse("Team/x"));
        assertEquals("'Team/x': 'Team' must be 1 to 96 of a-z 0-9 . _ -, start with a letter or digit and not contain"
                + " '..'", e.getMessage());
    }

    @Test
    void refsNameANumberAnAliasOrTheLatest() {
        ModelName m = new ModelName("team", "base");
        assertEquals(new VersionRef(m, Optional.of(3), Optional.empty()), VersionRef.parse("team/base@3"));
        assertEquals(new VersionRef(m, Optional.empty(), Optional.of("prod")), VersionRef.parse("team/base@prod"));
        assertEquals(new VersionRef(m, Optional.empty(), Optional.empty()), VersionRef.parse("team/base@latest"));
        assertEquals(VersionRef.parse("team/base"), VersionRef.parse("team/base@latest"));
        assertEquals("team/base@3", VersionRef.parse("team/base@3").toString());
        for (String bad : new String[] {"team/base@0", "team/base@99999999999", "team/base@Prod", "team/base@"}) {
            assertThrows(InvalidNameException.class, () -> VersionRef.parse(bad), bad);
        }
        assertThrows(InvalidNameException.class, () -> AliasName.check("latest"));
        assertThrows(InvalidNameException.class, () -> AliasName.check("3rd"));
    }

    @Test
    void refShapedStringsAreToldFromPathsAndUris() {
        assertTrue(VersionRef.isRefShaped("team/base@prod"));
        assertTrue(VersionRef.isRefShaped("team/base"));
        assertFalse(VersionRef.isRefShaped("/data/models/base"));
        assertFalse(VersionRef.isRefShaped("s3://bucket/base/"));
        assertFalse(VersionRef.isRefShaped("file:///data/base"));
        assertFalse(VersionRef.isRefShaped("./models/base/x"));
    }

    @Test
    void anUnreachableRegistryIsAPassingFailureNamingTheAddress() throws IOException {
        int port;
        try (ServerSocket socket = new ServerSocket(0)) {
            port = socket.getLocalPort(); // closed again: nothing listens there
        }
        RegistryClient client = new RegistryClient(URI.create("http://127.0.0.1:" + port), "test");
        IOException e = assertThrows(IOException.class, () -> client.resolve("team/base@1"));
        assertEquals("the registry at http://127.0.0.1:" + port + "/api/v1/ could not be reached (connection refused)",
                e.getMessage());
        assertTrue(RegistryClient.passing(e));
    }
}
