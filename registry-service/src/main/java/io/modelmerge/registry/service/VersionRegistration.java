package io.modelmerge.registry.service;

import io.modelmerge.registry.client.ModelName;
import io.modelmerge.registry.client.VersionRef;
import io.modelmerge.registry.content.ContentInspector;
import io.modelmerge.registry.content.StoredContent;
import io.modelmerge.registry.db.ModelTable;
import io.modelmerge.registry.db.NewVersion;
import io.modelmerge.registry.db.VersionRow;
import io.modelmerge.registry.db.VersionTable;
import io.modelmerge.registry.model.RegistryException;
import io.modelmerge.registry.model.Relation;
import io.modelmerge.registry.model.RequestNames;
import io.modelmerge.registry.model.VersionFormat;
import io.modelmerge.registry.service.RegisterVersionRequest.ParentRequest;
import io.modelmerge.registry.webhooks.WebhookEvents;
import io.modelmerge.service.db.Database;
import io.modelmerge.service.limits.Limits;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.regex.Pattern;

/**
 * Registers a version: checks the request, reads and checksums the files (outside any transaction, it is the slow
 * part), then in one short transaction that holds the model's row lock either finds the same content already
 * registered or takes the next number and inserts the version READY with its files and parents. A refused
 * request leaves nothing behind.
 */
@ApplicationScoped
public class VersionRegistration {
    private static final Pattern SHA256 = Pattern.compile("[0-9a-fA-F]{64}");

    /** The version, and whether this call created it (false: the same content was already registered). */
    public record Registered(VersionRow version, boolean created) {
    }

    private final Database db;
    private final ContentInspector inspector;

    public VersionRegistration(Database db, ContentInspector inspector) {
        this.db = db;
        this.inspector = inspector;
    }

    /**
     * Registers what {@code request.storageUri} holds as a version of {@code model}; with
     * {@code request.createModel} a missing model is created with it (the indexer, the merge service), otherwise
     * it is a 404.
     */
    public Registered register(ModelName model, RegisterVersionRequest request, String user) {
        RegisterVersionRequest.NewModel newModel = request.createModel();
        if (newModel != null) {
            Limits.description("create_model.description", newModel.description());
            Limits.tags("create_model.tags", orEmpty(newModel.tags()));
        }
        Optional<VersionFormat> format = Optional.ofNullable(request.format()).map(f -> VersionFormat.parse("format", f));
        List<ParentRequest> parents = request.parents() == null ? List.of() : request.parents();
        List<VersionRef> parentRefs = new ArrayList<>();
        List<Relation> relations = new ArrayList<>();
        for (int i = 0; i < parents.size(); i++) {
            ParentRequest parent = parents.get(i);
            if (parent == null) {
                throw RegistryException.badRequest("parents[" + i + "]", "must be an object {ref, relation}");
            }
            parentRefs.add(RequestNames.ref("parents[" + i + "].ref", parent.ref()));
            if (parent.relation() == null) {
                throw RegistryException.badRequest("parents[" + i + "].relation", "is required");
            }
            relations.add(Relation.parse("parents[" + i + "].relation", parent.relation()));
        }
        Map<String, Double> metrics = orEmpty(request.metrics());
        metrics.forEach((name, value) -> {
            if (value == null || !Double.isFinite(value)) {
                throw RegistryException.badRequest("metrics." + name, "must be a finite number, got " + value);
            }
        });
        Map<String, String> tags = Limits.tags("tags", orEmpty(request.tags()));
        Limits.description("description", request.description());
        if (request.recipe() != null) {
            Limits.recipe("recipe", request.recipe());
        }
        Map<String, String> expected = orEmpty(request.expectedSha256());
        expected.forEach((path, sum) -> {
            if (sum == null || !SHA256.matcher(sum).matches()) {
                throw RegistryException.badRequest("expected_sha256." + path, "must be 64 hex digits, got " + sum);
            }
        });

        StoredContent content = inspector.inspect("storage_uri", request.storageUri(), expected);
        VersionFormat resolvedFormat = checkFormat(format, content, relations);

        return db.transaction(c -> {
            long modelId = newModel == null ? ModelTable.lock(c, model) : ModelTable.lockOrCreate(c, model,
                    newModel.description() == null ? "" : newModel.description(), orEmpty(newModel.tags()));
            Optional<Long> existing = VersionTable.idByContent(c, modelId, content.contentDigest());
            if (existing.isPresent()) {
                return new Registered(VersionTable.view(c, existing.get()), false);
            }
            List<NewVersion.Parent> pinned = new ArrayList<>();
            for (int i = 0; i < parentRefs.size(); i++) {
                long parentId = VersionLookup.find(c, parentRefs.get(i)).orElseThrow(unknownParent(i, parentRefs.get(i)));
                pinned.add(new NewVersion.Parent(parentId, relations.get(i)));
                if (resolvedFormat == VersionFormat.DELTA && relations.get(i) == Relation.DELTA) {
                    String recorded = String.valueOf(content.summary().delta().get("base_digest"));
                    String actual = VersionTable.view(c, parentId).contentDigest();
                    if (!recorded.equals(actual)) {
                        throw RegistryException.unprocessable("parents[" + i + "].ref", "the delta was taken from a base"
                                + " with content " + recorded + ", but " + parentRefs.get(i) + " holds " + actual);
                    }
                }
            }
            int number = ModelTable.takeVersionNumber(c, modelId);
            long id = VersionTable.insert(c, modelId, number, new NewVersion(resolvedFormat, content, pinned,
                    request.recipe(), orEmpty(request.parameters()), metrics, tags,
                    request.description() == null ? "" : request.description(), user));
            WebhookEvents.versionReady(c, model.toString(), number, user);
            return new Registered(VersionTable.view(c, id), true);
        });
    }

    private static Supplier<RegistryException> unknownParent(int i, VersionRef ref) {
        return () -> RegistryException.badRequest("parents[" + i + "].ref", "no version " + ref + " in the registry");
    }

    /** The format the request names, checked against what the files are; by default what the files are. */
    private static VersionFormat checkFormat(Optional<VersionFormat> requested, StoredContent content,
                                             List<Relation> relations) {
        VersionFormat found = content.adapter() ? VersionFormat.PEFT_ADAPTER
                : content.delta() ? VersionFormat.DELTA : VersionFormat.CHECKPOINT;
        VersionFormat format = requested.orElse(found);
        if ((format == VersionFormat.PEFT_ADAPTER) != content.adapter()) {
            throw RegistryException.unprocessable("format", content.storageUri() + " holds "
                    + (content.adapter() ? "a PEFT adapter" : "no adapter_config.json") + ", so it cannot be registered as "
                    + format.wire());
        }
        if ((format == VersionFormat.DELTA) != content.delta()) {
            throw RegistryException.unprocessable("format", content.storageUri() + " holds "
                    + (content.delta() ? "a stored delta" : "no delta.json") + ", so it cannot be registered as "
                    + format.wire());
        }
        if (format == VersionFormat.FISHER || format == VersionFormat.GRAM) {
            Relation of = format == VersionFormat.FISHER ? Relation.FISHER_OF : Relation.GRAM_OF;
            if (!relations.contains(of)) {
                throw RegistryException.badRequest("parents", "a " + format.wire() + " version names the checkpoint it"
                        + " belongs to: a parent with relation " + of.wire());
            }
            if (!content.allTensorsF32()) {
                throw RegistryException.unprocessable("format", content.storageUri()
                        + ": a " + format.wire() + " version holds F32 tensors only");
            }
        }
        if (format == VersionFormat.DELTA && !relations.contains(Relation.DELTA)) {
            throw RegistryException.badRequest("parents", "a delta names the checkpoint it applies to: a parent with"
                    + " relation delta");
        }
        return format;
    }

    private static <K, V> Map<K, V> orEmpty(Map<K, V> map) {
        return map == null ? Map.of() : map;
    }
}
