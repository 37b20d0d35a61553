package io.modelmerge.registry.db;

import java.util.List;

/** One page of rows; pages count from 1. */
public record RowPage<T>(List<T> items, int page, int pageSize, long total) {
}
