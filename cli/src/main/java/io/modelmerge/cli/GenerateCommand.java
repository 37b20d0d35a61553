package io.modelmerge.cli;

import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.safetensors.DType;
import io.modelmerge.storage.safetensors.TensorSpec;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code mergectl generate}: synthetic Llama-shaped checkpoints for demos and tests, a base and fine-tunes of it
 * (the base plus small per-model noise), each in its own directory with a config.json.
 */
@Command(name = "generate", description = "Write a synthetic Llama-shaped base model and fine-tunes of it.")
final class GenerateCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "DIR", description = "Where to write one directory per model.")
    Path dir;

    @Option(names = "--names", split = ",", defaultValue = "base,ft-math,ft-code,ft-chat",
            description = "Directory names; the first is the base. Default: ${DEFAULT-VALUE}.")
    List<String> names;

    @Option(names = "--size", defaultValue = "64m", converter = ByteSize.class, description = "Size of each model.")
    long size;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        List<TensorSpec> specs = SyntheticCheckpoints.llamaOfSize(size, DType.BF16);
        long hidden = specs.getFirst().shape()[1];
        long vocab = specs.getFirst().shape()[0];
        long layers = specs.stream().filter(s -> s.name().endsWith("input_layernorm.weight")).count();
        for (int m = 0; m < names.size(); m++) {
            Path model = dir.resolve(names.get(m));
            SyntheticCheckpoints.write(model, specs, SyntheticCheckpoints.fineTune(m));
            Files.writeString(model.resolve("config.json"), """
                    {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": %d,
                     "num_hidden_layers": %d, "vocab_size": %d, "torch_dtype": "bfloat16"}
                    """.formatted(hidden, layers, vocab));
            out.println(model);
        }
        out.flush();
        return 0;
    }
}
