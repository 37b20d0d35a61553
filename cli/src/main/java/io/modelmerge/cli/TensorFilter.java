package io.modelmerge.cli;

import io.modelmerge.engine.delta.DeltaEdit;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** Which 2-D tensors a delta edit (bitdelta, lowrank) treats; the rest it stores whole. */
final class TensorFilter {
    @Spec(Spec.Target.MIXEE)
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--include", defaultValue = "", description = "only 2-D tensors whose names match this regex")
    String include;

    @Option(names = "--exclude", description = "tensors whose names match this regex are stored whole (default: "
            + "embeddings and heads)")
    String exclude;

    Pattern include() {
        return compile("--include", include);
    }

    Pattern exclude() {
        return exclude == null ? DeltaEdit.EMBEDDINGS_AND_HEADS : compile("--exclude", exclude);
    }

    private Pattern compile(String option, String regex) {
        try {
            return Pattern.compile(regex);
        } catch (PatternSyntaxException e) {
            throw new ParameterException(spec.commandLine(), option + " '" + regex + "' is not a regular expression: "
                    + e.getDescription() + " at index " + e.getIndex());
        }
    }
}
