package io.modelmerge.engine.method;

import java.util.List;

/**
 * A variant of a method that recipes choose by name ({@code election: paper}, {@code rescale: l1}): an enum whose
 * constants are spelled in recipes in lower case, some also by mergekit's older spellings.
 */
public interface Variant {

    String name();

    /** How recipes may spell this variant; the first is its name. */
    default List<String> spellings() {
        return List.of(name().toLowerCase(java.util.Locale.ROOT));
    }

    /** The constant of {@code type} that {@code text} spells, if any. */
    static <E extends Enum<E> & Variant> java.util.Optional<E> parse(Class<E> type, String text) {
        for (E e : type.getEnumConstants()) {
            if (e.spellings().contains(text)) {
                return java.util.Optional.of(e);
            }
        }
        return java.util.Optional.empty();
    }
}
