package io.modelmerge.cli;

import static io.modelmerge.cli.MergeCommandTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.modelmerge.engine.synthetic.SyntheticCheckpoints;
import io.modelmerge.storage.safetensors.DType;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code mergectl delta}: each command in the shape the README gives, on synthetic models. */
class DeltaCommandsTest {
    @Test
    void extractEditApplyAndComposeFromTheCommandLine(@TempDir Path dir) throws Exception {
        var specs = SyntheticCheckpoints.llama(2, 32, 64, 48, DType.BF16);
        Path base = SyntheticCheckpoints.write(dir.resolve("base"), specs, (t, i) -> Math.sin(i * 0.37 + t.length()));
        Path tuned = SyntheticCheckpoints.write(dir.resolve("tuned"), specs,
                (t, i) -> Math.sin(i * 0.37 + t.length()) + 0.02 * Math.cos(i * 1.3));
        String[] extracted = run("delta", "extract", "--base", base.toString(), "--model", tuned.toString(),
                dir.resolve("dense").toString(), "--threads", "2");
        assertEquals("0", extracted[0], extracted[2]);
        assertTrue(extracted[1].contains("worst reconstruction"), extracted[1]);
        String[] bits = run("delta", "bitdelta", "--base", base.toString(), "--model", tuned.toString(),
                dir.resolve("bits").toString());
        assertEquals("0", bits[0], bits[2]);
        String[] sparse = run("delta", "sparsify", "--method", "magnitude", "--density", "0.2", "--base", base.toString(),
                "--model", tuned.toString(), dir.resolve("sparse").toString());
        assertEquals("0", sparse[0], sparse[2]);
        String[] applied = run("delta", "apply", "--base", base.toString(), dir.resolve("dense").toString(),
                dir.resolve("rebuilt").toString());
        assertEquals("0", applied[0], applied[2]);
        assertEquals(-1, Files.mismatch(tuned.resolve("model.safetensors"), dir.resolve("rebuilt/model.safetensors")),
                "the dense delta applied to its base is the fine-tune, byte for byte");
        String[] composed = run("delta", "compose", "--base", base.toString(), "--lambda", "0.5,0.5",
                dir.resolve("bits").toString(), dir.resolve("sparse").toString(), dir.resolve("both").toString());
        assertEquals("0", composed[0], composed[2]);
        String[] lowrank = run("delta", "lowrank", "--base", base.toString(), "--model", tuned.toString(), "--max-rank", "4",
                dir.resolve("lora").toString());
        assertEquals("0", lowrank[0], lowrank[2]);
        assertTrue(Files.exists(dir.resolve("lora/adapter_config.json")) && Files.exists(dir.resolve("lora/adapter_model.safetensors")));
        String[] expo = run("delta", "extrapolate", "--base", base.toString(), "--model", tuned.toString(), "--alpha", "0.5",
                "--filter", "layers.1", dir.resolve("expo").toString());
        assertEquals("0", expo[0], expo[2]);
        String[] wrongBase = run("delta", "apply", "--base", tuned.toString(), dir.resolve("dense").toString(),
                dir.resolve("never").toString());
        assertEquals(String.valueOf(Mergectl.BAD_INPUT), wrongBase[0]);
        assertTrue(wrongBase[2].contains("was taken from base " + base), wrongBase[2]);
        String[] badP = run("delta", "sparsify", "--p", "1", "--base", base.toString(), "--model", tuned.toString(),
                dir.resolve("p1").toString());
        assertEquals("mergectl: DARE's drop probability p must be in [0, 1), got 1.0", badP[2].strip());
        for (String command : new String[] {"bitdelta", "lowrank"}) {
            String[] badRegex = run("delta", command, "--base", base.toString(), "--model", tuned.toString(),
                    "--exclude", "([", dir.resolve("regex-" + command).toString());
            assertEquals("2", badRegex[0], command);
            assertTrue(badRegex[2].startsWith("--exclude '([' is not a regular expression: Unclosed character class"),
                    badRegex[2]);
            assertTrue(Files.notExists(dir.resolve("regex-" + command)));
        }
        assertTrue(Files.notExists(dir.resolve("p1")) && Files.notExists(dir.resolve("never")));
    }
}
