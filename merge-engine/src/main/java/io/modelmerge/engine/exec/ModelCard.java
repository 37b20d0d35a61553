package io.modelmerge.engine.exec;

import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.storage.safetensors.JsonStrings;
import java.util.List;

/** The README.md of a merged model: Hugging Face Hub metadata (parents, relation, tags) and the recipe. */
final class ModelCard {
    private ModelCard() {
    }

    static String write(String title, Recipe recipe, List<String> notes) {
        StringBuilder card = new StringBuilder("---\nbase_model:\n");
        for (String ref : recipe.modelRefs()) {
            card.append("- ").append(JsonStrings.quote(ref)).append('\n');
        }
        card.append("base_model_relation: merge\ntags:\n- merge\n- modelmerge\n---\n\n");
        card.append("# ").append(title).append("\n\n");
        card.append("This model is a merge made with modelmerge using the `").append(recipe.mergeMethod())
                .append("` method");
        recipe.baseModel().ifPresent(b -> card.append(", with `").append(b).append("` as the base"));
        card.append(".\n\n## Models merged\n\n");
        for (String ref : recipe.modelRefs()) {
            card.append("- `").append(ref).append("`\n");
        }
        if (!notes.isEmpty()) {
            card.append("\n## Notes\n\n");
            notes.forEach(n -> card.append("- ").append(n).append('\n'));
        }
        card.append("\n## Recipe\n\n```yaml\n").append(recipe.yaml().strip()).append("\n```\n");
        return card.toString();
    }
}
