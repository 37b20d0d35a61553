package io.modelmerge.storage.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The file lines of the real fixtures' MANIFEST.md: what each file is said to be, to check our reading against. */
public final class FixtureManifest {
    /** One file line of MANIFEST.md; {@code tensors} is -1 for files that are not safetensors. */
    public record ManifestEntry(String folder, String file, long size, String sha256, int tensors, Set<String> dtypes,
                                String metadata) {
        public Path path() {
            return Fixtures.real(folder).resolve(file);
        }

        @Override
        public String toString() {
            return folder + "/" + file;
        }
    }

    private static final Pattern FOLDER = Pattern.compile("^## (\\S+)");
    private static final Pattern FILE = Pattern.compile(
            "^- `([^`]+)`: (\\d+) bytes, sha256 ([0-9a-f]{64})(?:; (\\d+) tensors, dtypes \\[([^]]*)], metadata (.*))?$");

    private FixtureManifest() {
    }

    public static List<ManifestEntry> entries() throws IOException {
        List<ManifestEntry> entries = new ArrayList<>();
        String folder = null;
        for (String line : Files.readAllLines(Fixtures.real("MANIFEST.md"))) {
            Matcher f = FOLDER.matcher(line);
            if (f.find()) {
                folder = f.group(1);
                continue;
            }
            Matcher m = FILE.matcher(line.strip());
            if (m.matches()) {
                Set<String> dtypes = new TreeSet<>();
                if (m.group(5) != null) {
                    for (String d : m.group(5).split(",")) {
                        dtypes.add(d.strip().replace("'", ""));
                    }
                }
                entries.add(new ManifestEntry(folder, m.group(1), Long.parseLong(m.group(2)), m.group(3),
                        m.group(4) == null ? -1 : Integer.parseInt(m.group(4)), dtypes, m.group(6)));
            }
        }
        return entries;
    }
}
