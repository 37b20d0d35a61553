package io.modelmerge.registry.api;

import io.modelmerge.registry.db.AliasRow;
import io.modelmerge.registry.db.FileRow;
import io.modelmerge.registry.db.IndexTaskRow;
import io.modelmerge.registry.db.Lineage;
import io.modelmerge.registry.db.ModelRow;
import io.modelmerge.registry.db.ParentRow;
import io.modelmerge.registry.db.RowPage;
import io.modelmerge.registry.db.VersionRow;
import java.util.List;
import java.util.function.Function;

/** What the API shows of the rows the registry stores: the one place the JSON shape meets the tables. */
final class Views {
    private Views() {
    }

    static ModelView of(ModelRow m) {
        return new ModelView(m.name(), m.namespace(), m.description(), m.tags(), m.latestVersion(), m.versionCount(),
                m.createdAt(), m.updatedAt());
    }

    static VersionView of(VersionRow v) {
        return new VersionView(v.ref(), v.model(), v.version(), v.status(), v.format(), v.storageUri(),
                v.contentDigest(), v.summary(), files(v.files()), v.parents().stream().map(Views::of).toList(),
                v.recipe(), v.parameters(), v.metrics(), v.tags(), v.description(), v.aliases(), v.createdBy(),
                v.createdAt());
    }

    static List<FileView> files(List<FileRow> files) {
        return files.stream().map(f -> new FileView(f.path(), f.size(), f.sha256(), f.crc32c(), f.downloadUrl()))
                .toList();
    }

    static ParentView of(ParentRow p) {
        return new ParentView(p.ref(), p.model(), p.version(), p.relation());
    }

    static AliasView of(AliasRow a) {
        return new AliasView(a.alias(), a.model(), a.version(), a.ref(), a.history().stream()
                .map(m -> new AliasView.Move(m.fromVersion(), m.toVersion(), m.movedBy(), m.movedAt())).toList());
    }

    static LineageView of(Lineage l) {
        return new LineageView(l.root(), l.depth(), l.nodes().stream().map(n -> new LineageView.Node(n.ref(), n.model(),
                n.version(), n.format(), n.status(), n.createdAt())).toList(), edges(l.edges()));
    }

    static List<LineageView.Edge> edges(List<Lineage.Edge> edges) {
        return edges.stream().map(e -> new LineageView.Edge(e.child(), e.parent(), e.relation())).toList();
    }

    static IndexTaskView of(IndexTaskRow t) {
        IndexTaskView.Report report = t.report() == null ? null : new IndexTaskView.Report(t.report().found(),
                t.report().registered().stream().map(r -> new IndexTaskView.Registered(r.storageUri(), r.ref()))
                        .toList(),
                t.report().skipped().stream().map(s -> new IndexTaskView.Skipped(s.storageUri(), s.reason())).toList());
        return new IndexTaskView(t.id(), t.uri(), t.namespace(), t.state(), report, t.error(), t.createdBy(),
                t.createdAt(), t.finishedAt());
    }

    static <R, V> Page<V> page(RowPage<R> rows, Function<R, V> view) {
        return new Page<>(rows.items().stream().map(view).toList(), rows.page(), rows.pageSize(), rows.total());
    }
}
