package io.modelmerge.mergeservice.evaluation;

import io.modelmerge.engine.search.Evaluator;
import io.modelmerge.mergeservice.MergeServiceConfig;
import io.modelmerge.mergeservice.jobs.JobException;
import io.modelmerge.registry.client.Identity;
import io.modelmerge.registry.client.InvalidNameException;
import io.modelmerge.registry.client.ModelName;
import io.modelmerge.registry.client.Scope;
import io.modelmerge.service.db.Database;
import io.modelmerge.service.limits.Limits;
import jakarta.enterprise.context.ApplicationScoped;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;
import org.eclipse.microprofile.config.inject.ConfigProperty;

/**
 * The evaluators searches score candidates with: registered per namespace ({@code ns/name@version}) by the
 * namespace's admins, named by recipes that its readers submit, called with their secret.
 */
@ApplicationScoped
public class Evaluators {
    private static final Pattern VERSION = Pattern.compile("[A-Za-z0-9._-]{1,64}");
    private static final int MIN_SECRET = 16;

    private final Database db;
    private final StoredScores scores;
    private final URI callbackUrl;
    private final HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10))
            .followRedirects(HttpClient.Redirect.NEVER).build();

    public Evaluators(Database db, StoredScores scores, MergeServiceConfig config,
                      @ConfigProperty(name = "quarkus.http.host") String host,
                      @ConfigProperty(name = "quarkus.http.port") int port) {
        this.db = db;
        this.scores = scores;
        String base = config.publicUrl().map(URI::toString).orElse("http://" + host + ":" + port);
        this.callbackUrl = URI.create(base.replaceAll("/+$", "") + EvaluationCallbacks.PATH);
    }

    /** Registers an evaluator, or gives an existing name@version a new URL and secret; takes admin on its namespace. */
    public RegisteredEvaluator register(String name, String version, String url, String secret, Identity caller) {
        ModelName parsed = name(name);
        if (!caller.mayInNamespace(Scope.ADMIN, parsed.namespace())) {
            throw JobException.denied(caller, "register evaluators in namespace " + parsed.namespace());
        }
        if (!VERSION.matcher(version).matches()) {
            throw invalid("evaluator.version: '" + Limits.printable(version) + "' is not 1 to 64 of A-Z a-z 0-9 . _ -");
        }
        if (url.length() > 2048 || url.indexOf('\0') >= 0) {
            throw invalid("evaluator.url: longer than 2048 characters or holding a NUL");
        }
        try {
            URI uri = new URI(url);
            if (!uri.isAbsolute() || !List.of("http", "https").contains(uri.getScheme()) || uri.getHost() == null) {
                throw invalid("evaluator.url: '" + Limits.printable(url) + "' is not an http:// or https:// URL");
            }
        } catch (URISyntaxException e) {
            throw invalid("evaluator.url: '" + Limits.printable(url) + "' is not a URL: " + e.getReason());
        }
        if (secret.length() < MIN_SECRET || secret.length() > 1024 || secret.indexOf('\0') >= 0) {
            throw invalid("secret: " + secret.length() + " characters; give " + MIN_SECRET + " to 1024, no NUL");
        }
        return db.transaction(c -> EvaluatorTable.upsert(c, new RegisteredEvaluator(parsed.toString(), version, url,
                secret, caller.name(), null)));
    }

    /** The evaluators in the namespaces {@code caller} may read. */
    public List<RegisteredEvaluator> list(Identity caller) {
        if (!caller.has(Scope.READ)) {
            throw JobException.denied(caller, "read evaluators");
        }
        return db.read(EvaluatorTable::all).stream().filter(e -> caller.may(Scope.READ, e.name())).toList();
    }

    /**
     * The evaluator {@code ref} ({@code ns/name@version}) names, which {@code caller} must be allowed to read:
     * what a submission checks.
     */
    public RegisteredEvaluator require(String ref, Identity caller) {
        if (!caller.may(Scope.READ, nameOf(ref).toString())) {
            throw JobException.denied(caller, "use the evaluator " + ref);
        }
        return registered(ref);
    }

    /** The evaluator {@code ref} names; NOT_FOUND when none is registered under it. */
    public RegisteredEvaluator registered(String ref) {
        ModelName name = nameOf(ref);
        String version = ref.substring(ref.lastIndexOf('@') + 1);
        return db.read(c -> EvaluatorTable.find(c, name.toString(), version)).orElseThrow(() ->
                new JobException(JobException.Kind.NOT_FOUND, "parameters.evaluator: no evaluator " + ref
                        + " is registered (mergectl evaluator register)"));
    }

    private static ModelName nameOf(String ref) {
        int at = ref.lastIndexOf('@');
        if (at < 0) {
            throw invalid("parameters.evaluator: '" + Limits.printable(ref) + "' names no version (ns/name@version)");
        }
        return name(ref.substring(0, at));
    }

    /** A client of {@code evaluator} that signs its requests and takes scores sent back later. */
    public Evaluator client(RegisteredEvaluator evaluator, Clock clock) {
        return new HttpEvaluator(evaluator.name(), evaluator.version(), URI.create(evaluator.url()),
                evaluator.secret(), client, clock, Optional.of(new HttpEvaluator.Callbacks(callbackUrl, scores)));
    }

    private static ModelName name(String name) {
        try {
            return ModelName.parse(name);
        } catch (InvalidNameException e) {
            throw invalid("evaluator.name: " + e.getMessage());
        }
    }

    private static JobException invalid(String message) {
        return new JobException(JobException.Kind.INVALID_ARGUMENT, message);
    }
}
