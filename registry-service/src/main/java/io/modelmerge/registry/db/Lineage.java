package io.modelmerge.registry.db;

import java.time.OffsetDateTime;
import java.util.List;

/** The ancestors of {@code root} up to {@code depth} generations, as a DAG: versions and child→parent edges. */
public record Lineage(String root, int depth, List<Node> nodes, List<Edge> edges) {

    public record Node(String ref, String model, int version, String format, String status, OffsetDateTime createdAt) {
    }

    public record Edge(String child, String parent, String relation) {
    }
}
