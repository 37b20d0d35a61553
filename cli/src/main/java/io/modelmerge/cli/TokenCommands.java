package io.modelmerge.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.modelmerge.registry.client.ApiTokens;
import io.modelmerge.registry.client.RegistryClient;
import java.io.IOException;
import java.io.PrintWriter;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code mergectl token ...}: the registry's API tokens. */
@Command(name = "token", mixinStandardHelpOptions = true, description = "Create, list and revoke API tokens.",
        subcommands = {TokenCommands.Create.class, TokenCommands.ListTokens.class, TokenCommands.Revoke.class,
                TokenCommands.Mint.class})
final class TokenCommands {
    @Command(name = "create", description = "Create a token (needs an admin token); prints it once.")
    static final class Create extends ServiceCommand.RegistryCommand {
        @Parameters(index = "0", paramLabel = "NAME", description = "Who or what uses it, e.g. ci-nightly.")
        String name;

        @Option(names = "--scope", split = ",", required = true,
                description = "read, write, promote, submit, admin (comma-separated or repeated).")
        List<String> scopes = new ArrayList<>();

        @Option(names = "--namespace", split = ",", required = true,
                description = "What it may touch: '*', 'team/*' or 'team/model' (comma-separated or repeated).")
        List<String> namespaces = new ArrayList<>();

        @Option(names = "--alias", split = ",", description = "With promote: only these aliases (default: any).")
        List<String> aliases = new ArrayList<>();

        @Option(names = "--expires-in", paramLabel = "DAYS", description = "Expire after this many days (default: never).")
        Integer expiresInDays;

        @Override
        void run(RegistryClient registry, PrintWriter out) throws IOException {
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("name", name);
            body.put("scopes", scopes);
            body.put("namespaces", namespaces);
            body.put("aliases", aliases);
            if (expiresInDays != null) {
                body.put("expires_at", OffsetDateTime.now(ZoneOffset.UTC).plus(Duration.ofDays(expiresInDays)).toString());
            }
            JsonNode created = registry.send("POST", "tokens", body);
            JsonNode stored = created.get("stored");
            out.printf("token %s (%s): %s on %s%s%s%n", stored.get("id").asText(), stored.get("name").asText(),
                    join(stored.get("scopes")), join(stored.get("namespaces")),
                    stored.get("aliases").isEmpty() ? "" : ", aliases " + join(stored.get("aliases")),
                    stored.get("expires_at").isNull() ? "" : ", expires " + stored.get("expires_at").asText());
            out.println(created.get("token").asText());
            out.println("(shown once: store it as a secret, e.g. MODELMERGE_TOKEN)");
        }
    }

    @Command(name = "list", description = "The tokens an admin token governs, without their secrets.")
    static final class ListTokens extends ServiceCommand.RegistryCommand {
        @Override
        void run(RegistryClient registry, PrintWriter out) throws IOException {
            for (JsonNode t : registry.get("tokens")) {
                String state = !t.get("revoked_at").isNull() ? "revoked"
                        : !t.get("expires_at").isNull() && OffsetDateTime.parse(t.get("expires_at").asText())
                                .isBefore(OffsetDateTime.now()) ? "expired" : "active";
                out.printf("%-10s  %-20s  %-8s  %-28s  %-24s  last used %s%n", t.get("id").asText(),
                        t.get("name").asText(), state, join(t.get("scopes")), join(t.get("namespaces")),
                        t.get("last_used_at").isNull() ? "never" : t.get("last_used_at").asText());
            }
        }
    }

    @Command(name = "revoke", description = "Revoke a token by its id (the 10 characters after mm_).")
    static final class Revoke extends ServiceCommand.RegistryCommand {
        @Parameters(index = "0", paramLabel = "ID")
        String id;

        @Override
        void run(RegistryClient registry, PrintWriter out) throws IOException {
            registry.send("DELETE", "tokens/" + id, null);
            out.println("revoked " + id);
        }
    }

    /** A fresh token string, made here, for a deployment's first admin token (modelmerge.registry.auth.bootstrap-token). */
    @Command(name = "mint", description = "Print a new random token, e.g. for a new installation's first admin token.")
    static final class Mint implements Callable<Integer> {
        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            spec.commandLine().getOut().println(ApiTokens.mint());
            spec.commandLine().getOut().flush();
            return 0;
        }
    }

    private static String join(JsonNode array) {
        List<String> items = new ArrayList<>();
        array.forEach(n -> items.add(n.asText()));
        return String.join(",", items);
    }
}
