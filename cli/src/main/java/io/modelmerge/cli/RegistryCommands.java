package io.modelmerge.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.modelmerge.registry.client.RegistryClient;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code mergectl models}, {@code versions}, {@code show}, {@code register}: the registry from the command line. */
final class RegistryCommands {
    private RegistryCommands() {
    }

    @Command(name = "models", description = "List or search models.")
    static final class Models extends ServiceCommand.RegistryCommand {
        @Option(names = "--query", description = "Substring of the name or description.")
        String query = "";

        @Option(names = "--tag", paramLabel = "KEY:VALUE", description = "Only models with this tag (repeatable).")
        List<String> tags = new ArrayList<>();

        @Override
        void run(RegistryClient registry, PrintWriter out) throws IOException {
            StringBuilder path = new StringBuilder("models?page_size=200&query=").append(encode(query));
            tags.forEach(t -> path.append("&tag=").append(encode(t)));
            for (JsonNode m : registry.get(path.toString()).get("items")) {
                out.printf("%-40s  latest %-4s  %s%n", m.get("name").asText(),
                        m.get("latest_version").isNull() ? "-" : m.get("latest_version").asText(),
                        m.get("description").asText());
            }
        }
    }

    @Command(name = "versions", description = "List the versions of a model, newest first.")
    static final class Versions extends ServiceCommand.RegistryCommand {
        @Parameters(index = "0", paramLabel = "NS/NAME")
        String model;

        @Override
        void run(RegistryClient registry, PrintWriter out) throws IOException {
            for (JsonNode v : registry.get("models/" + model + "/versions?page_size=200").get("items")) {
                out.printf("%-40s  %-12s  %-6s  %,15d params  %s%s%n", v.get("ref").asText(), v.get("format").asText(),
                        v.get("status").asText(), v.path("summary").path("parameter_count").asLong(),
                        v.get("created_at").asText(), v.get("aliases").isEmpty() ? "" : "  @" + join(v.get("aliases")));
            }
        }
    }

    @Command(name = "show", description = "Show a version (ns/name@N, ns/name@alias, ns/name) with its files and lineage.")
    static final class Show extends ServiceCommand.RegistryCommand {
        @Parameters(index = "0", paramLabel = "REF")
        String ref;

        @Option(names = "--depth", description = "Generations of lineage to show. Default: 10.")
        int depth = 10;

        @Override
        void run(RegistryClient registry, PrintWriter out) throws IOException {
            JsonNode v = registry.get("resolve?ref=" + encode(ref));
            out.println(v.get("ref").asText() + "  " + v.get("format").asText() + "  " + v.get("status").asText()
                    + (v.get("aliases").isEmpty() ? "" : "  aliases: " + join(v.get("aliases"))));
            out.println("storage: " + v.get("storage_uri").asText());
            JsonNode s = v.get("summary");
            out.printf("summary: %d tensors, %,d parameters, dtypes %s%s%n", s.get("tensor_count").asInt(),
                    s.get("parameter_count").asLong(), s.get("dtypes"),
                    s.hasNonNull("architecture") ? ", " + s.get("architecture").asText() : "");
            if (!v.get("metrics").isEmpty()) {
                out.println("metrics: " + v.get("metrics"));
            }
            for (JsonNode f : v.get("files")) {
                out.printf("  %-40s %,14d  sha256 %s%n", f.get("path").asText(), f.get("size").asLong(),
                        f.get("sha256").asText());
            }
            String[] parts = v.get("ref").asText().split("@");
            JsonNode lineage = registry.get("models/" + parts[0] + "/versions/" + parts[1] + "/lineage?depth=" + depth);
            if (!lineage.get("edges").isEmpty()) {
                out.println("lineage:");
                for (JsonNode e : lineage.get("edges")) {
                    out.println("  " + e.get("child").asText() + " <-" + e.get("relation").asText() + "- "
                            + e.get("parent").asText());
                }
            }
            if (v.hasNonNull("recipe")) {
                out.println("recipe:");
                v.get("recipe").asText().lines().forEach(l -> out.println("  " + l));
            }
        }
    }

    @Command(name = "register", description = "Register what a storage URI holds as a new version of a model.")
    static final class Register extends ServiceCommand.RegistryCommand {
        @Parameters(index = "0", paramLabel = "URI", description = "s3://bucket/prefix/ or file:///dir/")
        String uri;

        @Option(names = "--model", required = true, paramLabel = "NS/NAME")
        String model;

        @Option(names = "--parent", paramLabel = "REF=RELATION", description = "A parent, e.g. team/base@1=finetune (repeatable).")
        Map<String, String> parents = new LinkedHashMap<>();

        @Option(names = "--format", description = "checkpoint, peft_adapter, delta or fisher (default: what the files are).")
        String format;

        @Override
        void run(RegistryClient registry, PrintWriter out) throws IOException {
            try {
                registry.send("POST", "models", Map.of("name", model));
            } catch (RegistryClient.RegistryError e) {
                if (e.status() != 409) { // 409: the model exists, which is what registering needs
                    throw e;
                }
            }
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("storage_uri", uri);
            if (format != null) {
                body.put("format", format);
            }
            body.put("parents", parents.entrySet().stream()
                    .map(p -> Map.of("ref", p.getKey(), "relation", p.getValue())).toList());
            JsonNode v = registry.send("POST", "models/" + model + "/versions", body);
            out.println(v.get("ref").asText() + "  " + v.get("format").asText() + "  "
                    + v.path("summary").path("tensor_count").asInt() + " tensors  " + v.get("content_digest").asText());
        }
    }

    private static String encode(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    private static String join(JsonNode array) {
        List<String> items = new ArrayList<>();
        array.forEach(a -> items.add(a.asText()));
        return String.join(", ", items);
    }
}
