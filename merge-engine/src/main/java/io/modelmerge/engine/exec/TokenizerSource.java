package io.modelmerge.engine.exec;

import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.checkpoint.Checkpoint;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * {@code tokenizer_source}: the input whose tokenizer files the output takes ({@code base} or a model's ref), as
 * mergekit's. mergekit re-orders embedding rows when the inputs' vocabularies differ; that is not done here, so a
 * tokenizer source whose tokenizer differs from another input's is refused before any data is read.
 */
final class TokenizerSource {
    /** The files that make up a tokenizer. */
    static final Set<String> FILES = Set.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "added_tokens.json", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "vocab.json",
            "vocab.txt", "merges.txt", "chat_template.jinja", "chat_template.json");
    /** The files whose bytes say whether two tokenizers map text to the same ids. */
    private static final List<String> VOCABULARY = List.of("tokenizer.json", "tokenizer.model", "vocab.json",
            "vocab.txt");

    private TokenizerSource() {
    }

    /** The input the recipe names as its tokenizer source, checked against the others; empty when none is named. */
    static Optional<InputModel> of(Recipe recipe, List<InputModel> inputs) throws IOException, RecipeException {
        if (recipe.tokenizerSource().isEmpty()) {
            return Optional.empty();
        }
        String named = recipe.tokenizerSource().get();
        String ref = named.equals("base") ? recipe.baseModel().orElseThrow() : named;
        InputModel source = inputs.stream().filter(i -> i.ref().equals(ref)).findFirst().orElseThrow(() ->
                new RecipeException("tokenizer_source '" + named + "' is not one of the recipe's models"));
        for (String file : VOCABULARY) {
            Optional<byte[]> own = read(source.checkpoint(), file);
            if (own.isEmpty()) {
                continue;
            }
            for (InputModel other : inputs) {
                Optional<byte[]> theirs = read(other.checkpoint(), file);
                if (theirs.isPresent() && !Arrays.equals(own.get(), theirs.get())) {
                    throw new RecipeException("tokenizer_source " + ref + " has a different " + file + " from "
                            + other.ref() + "; re-ordering embeddings to another vocabulary is not supported yet");
                }
            }
        }
        return Optional.of(source);
    }

    /** Writes the source's tokenizer files into {@code dir}, over any already there. */
    static void copy(InputModel source, Path dir) throws IOException {
        MergeExecutor.copyTagAlong(source.checkpoint(), dir, FILES::contains);
    }

    /** The bytes of the tag-along file {@code name} of {@code checkpoint}, if it has one. */
    static Optional<byte[]> read(Checkpoint checkpoint, String name) throws IOException {
        for (BlobInfo file : checkpoint.tagAlongFiles()) {
            if (file.fileName().equals(name)) {
                try (InputStream in = checkpoint.store().read(file.key())) {
                    return Optional.of(in.readAllBytes());
                }
            }
        }
        return Optional.empty();
    }
}
