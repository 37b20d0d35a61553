package io.modelmerge.registry.service;

import com.fasterxml.jackson.databind.JsonNode;
import io.modelmerge.registry.RegistryConfig;
import io.modelmerge.registry.client.ModelName;
import io.modelmerge.registry.client.VersionRef;
import io.modelmerge.registry.content.StorageLocations;
import io.modelmerge.registry.db.AliasRow;
import io.modelmerge.registry.db.AliasTable;
import io.modelmerge.registry.db.FileRow;
import io.modelmerge.registry.db.Lineage;
import io.modelmerge.registry.db.ModelRow;
import io.modelmerge.registry.db.ModelTable;
import io.modelmerge.registry.db.RowPage;
import io.modelmerge.registry.db.VersionRow;
import io.modelmerge.registry.db.VersionTable;
import io.modelmerge.registry.model.RegistryException;
import io.modelmerge.registry.model.RequestNames;
import io.modelmerge.registry.webhooks.WebhookEvents;
import io.modelmerge.service.db.Database;
import io.modelmerge.service.limits.Limits;
import io.modelmerge.storage.blob.Located;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** Models, versions, lineage and aliases: the registry's reads and its small writes (registration is apart). */
@ApplicationScoped
public class Registry {
    public static final int MAX_PAGE_SIZE = 200;
    public static final int MAX_LINEAGE_DEPTH = 100;

    private final Database db;
    private final StorageLocations locations;
    private final RegistryConfig config;

    public Registry(Database db, StorageLocations locations, RegistryConfig config) {
        this.db = db;
        this.locations = locations;
        this.config = config;
    }

    public ModelRow createModel(CreateModelRequest request) {
        ModelName name = RequestNames.model("name", request.name());
        Map<String, String> tags = Limits.tags("tags", request.tags() == null ? Map.of() : request.tags());
        String description = request.description() == null ? "" : request.description();
        Limits.description("description", description);
        return db.transaction(c -> ModelTable.create(c, name, description, tags));
    }

    public ModelRow model(ModelName name) {
        return db.read(c -> ModelTable.find(c, name))
                .orElseThrow(() -> RegistryException.notFound("No model " + name));
    }

    /**
     * Models matching {@code query} and carrying every {@code k:v} of {@code tagFilters}, among those that
     * {@code grants} cover ({@code team/*}, {@code team/model}; null: all).
     */
    public RowPage<ModelRow> searchModels(String query, List<String> tagFilters, List<String> grants, int page,
                                          int pageSize) {
        checkPage(page, pageSize);
        Map<String, String> tags = new LinkedHashMap<>();
        for (String filter : tagFilters) {
            int colon = filter.indexOf(':');
            if (colon <= 0) {
                throw RegistryException.badRequest("tag", "'" + filter + "' is not key:value");
            }
            tags.put(filter.substring(0, colon), filter.substring(colon + 1));
        }
        return db.read(c -> ModelTable.search(c, query == null ? "" : query, tags, grants, page, pageSize));
    }

    /**
     * Applies a JSON merge patch (RFC 7396) of {@code description} and {@code tags}: a tag set to null is removed.
     */
    public ModelRow patchModel(ModelName name, JsonNode patch) {
        if (patch == null || !patch.isObject()) {
            throw RegistryException.badRequest("body", "a JSON merge patch object {description, tags} is required");
        }
        patch.fieldNames().forEachRemaining(field -> {
            if (!field.equals("description") && !field.equals("tags")) {
                throw RegistryException.badRequest(field, "cannot be changed (only description and tags can)");
            }
        });
        JsonNode description = patch.get("description");
        if (description != null && !description.isTextual() && !description.isNull()) {
            throw RegistryException.badRequest("description", "must be a string");
        }
        JsonNode tagPatch = patch.get("tags");
        if (tagPatch != null && !tagPatch.isObject() && !tagPatch.isNull()) {
            throw RegistryException.badRequest("tags", "must be an object of strings");
        }
        return db.transaction(c -> {
            long id = ModelTable.lock(c, name);
            ModelRow current = ModelTable.find(c, name).orElseThrow();
            Map<String, String> tags = new LinkedHashMap<>(current.tags());
            if (tagPatch != null && tagPatch.isNull()) {
                tags.clear();
            } else if (tagPatch != null) {
                for (var entry : tagPatch.properties()) {
                    if (entry.getValue().isNull()) {
                        tags.remove(entry.getKey());
                    } else if (entry.getValue().isTextual()) {
                        tags.put(entry.getKey(), entry.getValue().asText());
                    } else {
                        throw RegistryException.badRequest("tags." + entry.getKey(), "must be a string or null");
                    }
                }
            }
            Limits.tags("tags", tags);
            String newDescription = description == null ? current.description()
                    : description.isNull() ? "" : description.asText();
            Limits.description("description", newDescription);
            ModelTable.update(c, id, newDescription, tags);
            return ModelTable.find(c, name).orElseThrow();
        });
    }

    /** Deletes a model that has no versions; one with versions is a 409. */
    public void deleteModel(ModelName name) {
        db.transaction(c -> {
            long id = ModelTable.lock(c, name);
            ModelRow model = ModelTable.find(c, name).orElseThrow();
            if (model.versionCount() > 0) {
                throw RegistryException.conflict("Model " + name + " has " + model.versionCount()
                        + " version(s); versions are immutable, so a model with versions cannot be deleted");
            }
            ModelTable.delete(c, id);
            return null;
        });
    }

    public VersionRow version(ModelName name, int version) {
        VersionRef ref = VersionRef.of(name, version);
        return db.read(c -> VersionTable.view(c, VersionLookup.require(c, ref)));
    }

    public RowPage<VersionRow> versions(ModelName name, int page, int pageSize) {
        checkPage(page, pageSize);
        return db.read(c -> VersionTable.list(c, ModelTable.idOf(c, name), page, pageSize));
    }

    /** The version's files, each with a URL to download it from. */
    public List<FileRow> files(ModelName name, int version) {
        return withDownloadUrls(version(name, version)).files();
    }

    /** The version {@code ref} names, with download URLs for its files: what a merge worker needs. */
    public VersionRow resolve(String ref) {
        VersionRef parsed = RequestNames.ref("ref", ref);
        return withDownloadUrls(db.read(c -> VersionTable.view(c, VersionLookup.require(c, parsed))));
    }

    public Lineage lineage(ModelName name, int version, int depth) {
        if (depth < 1 || depth > MAX_LINEAGE_DEPTH) {
            throw RegistryException.badRequest("depth", "must be 1 to " + MAX_LINEAGE_DEPTH + ", got " + depth);
        }
        VersionRef ref = VersionRef.of(name, version);
        return db.read(c -> VersionTable.lineage(c, VersionLookup.require(c, ref), ref.toString(), depth));
    }

    /** The versions made from this one, as edges child → this version. */
    public List<Lineage.Edge> children(ModelName name, int version) {
        VersionRef ref = VersionRef.of(name, version);
        return db.read(c -> VersionTable.children(c, VersionLookup.require(c, ref)));
    }

    /** Points {@code alias} at {@code version}, recording the move; moving it where it is changes nothing. */
    public AliasRow moveAlias(ModelName name, String alias, Integer version, String user) {
        RequestNames.alias("alias", alias);
        if (version == null || version < 1) {
            throw RegistryException.badRequest("version", "a version number (1 or more) is required, got " + version);
        }
        return db.transaction(c -> {
            long modelId = ModelTable.lock(c, name);
            long versionId = VersionTable.idOf(c, modelId, version).orElseThrow(() ->
                    RegistryException.badRequest("version", "model " + name + " has no version " + version));
            Optional<Integer> from = AliasTable.current(c, modelId, alias);
            AliasTable.move(c, modelId, alias, versionId, version, user);
            if (from.isEmpty() || from.get().intValue() != version) {
                WebhookEvents.aliasMoved(c, name.toString(), alias, from.orElse(null), version, user);
            }
            return AliasTable.view(c, modelId, name.toString(), alias).orElseThrow();
        });
    }

    public List<AliasRow> aliases(ModelName name) {
        return db.read(c -> AliasTable.list(c, ModelTable.idOf(c, name), name.toString()));
    }

    public AliasRow alias(ModelName name, String alias) {
        return db.read(c -> AliasTable.view(c, ModelTable.idOf(c, name), name.toString(), alias))
                .orElseThrow(() -> RegistryException.notFound("Model " + name + " has no alias '" + alias + "'"));
    }

    public void deleteAlias(ModelName name, String alias, String user) {
        boolean deleted = db.transaction(c -> {
            long modelId = ModelTable.lock(c, name);
            Optional<Integer> from = AliasTable.current(c, modelId, alias);
            if (!AliasTable.delete(c, modelId, alias, user)) {
                return false;
            }
            WebhookEvents.aliasMoved(c, name.toString(), alias, from.orElse(null), null, user);
            return true;
        });
        if (!deleted) {
            throw RegistryException.notFound("Model " + name + " has no alias '" + alias + "'");
        }
    }

    private VersionRow withDownloadUrls(VersionRow version) {
        String base = version.storageUri().endsWith("/") ? version.storageUri()
                : version.storageUri().substring(0, version.storageUri().lastIndexOf('/') + 1);
        Located dir = locations.locate("storage_uri", base);
        return version.withFiles(version.files().stream().map(f -> new FileRow(f.path(), f.size(), f.sha256(),
                f.crc32c(), dir.store().downloadUrl(dir.key() + f.path(), config.downloadUrlTtl()).toString())).toList());
    }

    private static void checkPage(int page, int pageSize) {
        if (page < 1) {
            throw RegistryException.badRequest("page", "pages count from 1, got " + page);
        }
        if (pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
            throw RegistryException.badRequest("page_size", "must be 1 to " + MAX_PAGE_SIZE + ", got " + pageSize);
        }
    }
}
