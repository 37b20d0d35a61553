package io.modelmerge.mergeservice;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.recipe.RecipeParser;
import io.modelmerge.proto.v1.Job;
import io.modelmerge.proto.v1.JobRef;
import io.modelmerge.proto.v1.JobState;
import io.modelmerge.proto.v1.MergeServiceGrpc;
import io.modelmerge.proto.v1.Options;
import io.modelmerge.proto.v1.Output;
import io.modelmerge.proto.v1.SubmitMergeRequest;
import io.modelmerge.service.local.EmbeddedDatabase;
import io.modelmerge.storage.blob.BlobInfo;
import io.modelmerge.storage.blob.BlobStore;
import io.modelmerge.storage.blob.S3BlobStore;
import io.modelmerge.storage.testing.S3ProxyServer;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * One merge spread over three merge-service processes that share one PostgreSQL (the test's) and S3Proxy, with the
 * registry on the same PostgreSQL: a job of more than 12 output shards is merged shard by shard by every replica,
 * byte for byte what one worker writes; a replica killed with SIGKILL mid-shard costs only that shard's redo; jobs
 * with a model-wide statistic (TIES with topk_scope: model, normalized Fisher) split the same way.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class SplitJobIT {
    private static final String BUCKET = "models";
    /** The smallest shard the service takes: the test models' output takes more than 12 of them. */
    private static final long SHARD = 1L << 20;
    /** Each replica's merge rate: a shard takes about a second, long enough to be seen running. */
    private static final String RATE = String.valueOf(1L << 20);
    private static final Map<String, long[]> SHAPES = MergeServiceIT.SmallModels.shapes(12, 256, 1024, 2048);

    private static Path work;
    private static EmbeddedPostgres postgres;
    private static S3ProxyServer s3;
    private static BlobStore bucket;
    private static ServiceProcess registry;
    private static final List<ServiceProcess> replicas = new ArrayList<>();
    private static ManagedChannel channel;
    private static MergeServiceGrpc.MergeServiceBlockingStub jobs;

    @BeforeAll
    static void startThreeReplicas() throws Exception {
        work = Files.createTempDirectory("split-it-");
        postgres = EmbeddedDatabase.start(work.resolve("postgres"));
        try (Connection c = DriverManager.getConnection(postgres.getJdbcUrl("postgres", "postgres"));
             Statement s = c.createStatement()) {
            s.execute("CREATE DATABASE registry");
            s.execute("CREATE DATABASE jobs");
        }
        s3 = S3ProxyServer.start(work.resolve("s3"), BUCKET);
        bucket = S3BlobStore.open(URI.create("s3://" + BUCKET + "/"), s3.settings());
        Map<String, String> aws = Map.of("AWS_ENDPOINT_URL", s3.endpoint().toString(),
                "AWS_ACCESS_KEY_ID", S3ProxyServer.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY", S3ProxyServer.SECRET_KEY,
                "AWS_REGION", "us-east-1");
        Map<String, String> registryEnv = new LinkedHashMap<>(aws);
        registryEnv.put("MODELMERGE_DATA_DIR", work.resolve("registry").toString());
        registryEnv.put("MODELMERGE_REGISTRY_LOCAL_ROOTS", work.resolve("local").toString());
        registryEnv.put("QUARKUS_DATASOURCE_JDBC_URL", postgres.getJdbcUrl("postgres", "registry"));
        TestSystem.bootstrapToken(registryEnv);
        registry = ServiceProcess.start("registry", "modelmerge.registry.jar", registryEnv, work);
        for (int r = 0; r < 3; r++) {
            Map<String, String> env = new LinkedHashMap<>(aws);
            env.put("MODELMERGE_DATA_DIR", work.resolve("merge-" + r).toString());
            env.put("QUARKUS_DATASOURCE_JDBC_URL", postgres.getJdbcUrl("postgres", "jobs"));
            env.put("MODELMERGE_MERGE_REGISTRY_URL", "http://127.0.0.1:" + registry.port());
            TestSystem.registryToken(env);
            env.put("MODELMERGE_MERGE_LOCAL_ROOTS", work.resolve("local").toString());
            env.put("MODELMERGE_MERGE_OUTPUT_ROOT", "s3://" + BUCKET + "/merged/");
            env.put("MODELMERGE_MERGE_LEASE", "PT3S");
            env.put("MODELMERGE_MERGE_POLL_INTERVAL", "PT0.1S");
            env.put("MODELMERGE_MERGE_MAX_BYTES_PER_SECOND", RATE);
            replicas.add(ServiceProcess.start("merge-service-" + r, "modelmerge.merge.jar", env, work));
        }
        channel = ManagedChannelBuilder.forAddress("127.0.0.1", replicas.getFirst().port()).usePlaintext().build();
        jobs = TestSystem.stub(channel, TestSystem.ADMIN_TOKEN);
        for (int m = 0; m < 4; m++) {
            MergeServiceIT.SmallModels.write(work.resolve("local/model-" + m), m, SHAPES);
            MergeServiceIT.SmallModels.write(work.resolve("local/fisher-" + m), 10 + m, SHAPES);
        }
    }

    @AfterAll
    static void stop() throws Exception {
        if (channel != null) {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        for (ServiceProcess replica : replicas) {
            replica.close();
        }
        if (registry != null) {
            registry.close();
        }
        if (bucket != null) {
            bucket.close();
        }
        if (s3 != null) {
            s3.close();
        }
        if (postgres != null) {
            postgres.close();
        }
        TestSystem.deleteTree(work);
    }

    private static String local(String name) {
        return work.resolve("local/" + name).toString();
    }

    private static String ties(String extra) {
        StringBuilder yaml = new StringBuilder("merge_method: ties\nbase_model: " + local("model-0") + "\nmodels:\n");
        for (int m = 1; m < 4; m++) {
            yaml.append("  - model: ").append(local("model-" + m)).append("\n    parameters: {weight: 0.5, density: 0.4}\n");
        }
        return yaml.append(extra).toString();
    }

    private static Job run(String recipe, String output) {
        return jobs.submitMerge(SubmitMergeRequest.newBuilder().setRecipeYaml(recipe)
                .setOutput(Output.newBuilder().setModel(output))
                .setOptions(Options.newBuilder().setSeed(5).setShardSizeBytes(SHARD)).build());
    }

    @Test
    @Order(1)
    void aJobOfManyShardsIsMergedByEveryReplicaAndEqualsOneWorkersRun() throws Exception {
        String recipe = ties("");
        Job done = watch(run(recipe, "team/split").getId());
        assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
        Map<String, String> mergedBy = mergedBy(done.getId());
        assertTrue(mergedBy.size() >= 12, mergedBy.size() + " shards");
        Set<Long> replicasSeen = new HashSet<>();
        mergedBy.values().forEach(owner -> replicasSeen.add(Long.parseLong(owner.substring(0, owner.indexOf('@')))));
        for (ServiceProcess replica : replicas) {
            assertTrue(replicasSeen.contains(replica.pid()), "replica " + replica.pid() + " merged no shard: " + mergedBy);
        }
        assertSameAsOneWorker(recipe, done);
        JsonNode version = get("models/team/split/versions/1");
        assertEquals(mergedBy.size(), version.path("parameters").path("shards_merged_by").size(), version.toString());
    }

    @Test
    @Order(2)
    void aReplicaKilledMidShardCostsOnlyThatShard() throws Exception {
        String recipe = ties("");
        String id = run(recipe, "team/split-killed").getId();
        ServiceProcess victim = null;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (victim == null && System.nanoTime() < deadline) {
            victim = replicaMidShard(id);
            Thread.sleep(20);
        }
        assertTrue(victim != null, "no replica was seen merging a shard of job " + id);
        victim.kill();
        Job done = watch(id);
        assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
        assertEquals(1, get("models/team/split-killed/versions").get("total").asInt());
        assertSameAsOneWorker(recipe, done); // nothing under the job's prefix but the version's files, too
    }

    @Test
    @Order(3)
    void jobsWithAModelWideStatisticSplitToTheSameBytes() throws Exception {
        String modelWide = ties("parameters: {topk_scope: model}\n");
        Job ties = watch(run(modelWide, "team/split-model-wide").getId());
        assertEquals(JobState.SUCCEEDED, ties.getState(), ties.getError());
        assertTrue(mergedBy(ties.getId()).size() >= 12);
        assertSameAsOneWorker(modelWide, ties);

        StringBuilder fisher = new StringBuilder("merge_method: fisher\nmodels:\n");
        for (int m = 1; m < 4; m++) {
            fisher.append("  - model: ").append(local("model-" + m)).append("\n    parameters: {weight: 1.0, fisher: ")
                    .append(local("fisher-" + m)).append("}\n");
        }
        fisher.append("parameters: {normalize_fishers: true}\n");
        Job fisherJob = watch(run(fisher.toString(), "team/split-fisher").getId());
        assertEquals(JobState.SUCCEEDED, fisherJob.getState(), fisherJob.getError());
        assertSameAsOneWorker(fisher.toString(), fisherJob);
    }

    @Test
    @Order(4)
    void aCancelledSplitJobLeavesNoShardAnyWorkerUploaded() throws Exception {
        String id = run(ties(""), "team/split-cancelled").getId();
        assertTrue(awaitShardsMerged(id, 3).size() >= 3, "three shards merged before the cancel");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        Job running = jobs.getJob(JobRef.newBuilder().setId(id).build());
        while (running.getProgress().getTensorsDone() < 3 && System.nanoTime() < deadline) {
            Thread.sleep(100);
            running = jobs.getJob(JobRef.newBuilder().setId(id).build());
        }
        // a split job's progress counts shards, with the bytes merged, the rate and the time left
        assertTrue(running.getProgress().getTensorsTotal() >= 12, running.getProgress().toString());
        assertTrue(running.getProgress().getBytesDone() > 0 && running.getProgress().getBytesPerSecond() > 0
                && running.getProgress().getEtaSeconds() > 0, running.getProgress().toString());
        String metrics = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
                + replicas.getFirst().port() + "/q/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
        assertTrue(metrics.contains("\nmodelmerge_jobs_running 1\n"), metrics);
        assertTrue(metrics.contains("\nmodelmerge_queue_depth "), metrics);
        jobs.cancelJob(JobRef.newBuilder().setId(id).build());
        Job done = watch(id);
        assertEquals(JobState.CANCELLED, done.getState());
        assertEquals(List.of(), bucket.list("merged/team/split-cancelled/" + id + "/"));
        assertEquals(Map.of(), mergedBy(id), "the job's tasks are gone with their uploads");
        assertEquals(404, registry("models/team/split-cancelled/versions/1").statusCode());
    }

    /** A shard that fails (the merge overflows) fails its job naming the tensor, and nothing of it is left. */
    @Test
    @Order(5)
    void aFailingShardFailsTheJobAndLeavesNothing() throws Exception {
        StringBuilder recipe = new StringBuilder("merge_method: linear\nmodels:\n");
        recipe.append("  - model: ").append(local("model-1")).append("\n    parameters: {weight: 1e308}\n");
        recipe.append("  - model: ").append(local("model-2")).append("\n    parameters: {weight: 1}\n");
        recipe.append("parameters: {normalize: false}\n");
        Job done = watch(run(recipe.toString(), "team/split-overflow").getId());
        assertEquals(JobState.FAILED, done.getState());
        assertTrue(done.getError().matches(".*tensor '[a-z_.0-9]+' would hold (NaN|infinity) .*"), done.getError());
        assertEquals(List.of(), bucket.list("merged/team/split-overflow/"));
        assertEquals(Map.of(), mergedBy(done.getId()));
        assertEquals(404, registry("models/team/split-overflow").statusCode(), "no model without a version");
    }

    /**
     * The coordinator killed with SIGKILL mid-job: another replica claims the job when its lease runs out, reuses
     * the shards already merged (their workers unchanged), merges the rest and commits: one version, the same bytes.
     * Last: it may kill the replica the other tests talk to.
     */
    @Test
    @Order(6)
    void aKilledCoordinatorsJobIsFinishedByAnotherReplicaReusingTheMergedShards() throws Exception {
        String recipe = ties("parameters: {topk_scope: model}\n");
        String id = run(recipe, "team/split-coordinator-killed").getId();
        Map<String, String> before = awaitShardsMerged(id, 2);
        assertTrue(before.size() >= 2, "two shards merged before the kill");
        ServiceProcess coordinator = coordinatorOf(id);
        coordinator.kill();
        ServiceProcess survivor = replicas.stream().filter(r -> r != coordinator && r.alive()).findFirst().orElseThrow();
        ManagedChannel other = ManagedChannelBuilder.forAddress("127.0.0.1", survivor.port()).usePlaintext().build();
        try {
            Job done = watch(TestSystem.stub(other, TestSystem.ADMIN_TOKEN), id);
            assertEquals(JobState.SUCCEEDED, done.getState(), done.getError());
            assertEquals(2, done.getAttempts(), "the job's second attempt finished it");
            Map<String, String> after = mergedBy(id);
            before.forEach((file, worker) -> assertEquals(worker, after.get(file), file + " was merged again"));
            assertEquals(1, get("models/team/split-coordinator-killed/versions").get("total").asInt());
            assertSameAsOneWorker(recipe, done);
        } finally {
            other.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    /** The replica whose worker holds job {@code id} (its coordinator). */
    private static ServiceProcess coordinatorOf(String id) throws Exception {
        try (Connection c = DriverManager.getConnection(postgres.getJdbcUrl("postgres", "jobs"));
             ResultSet rs = c.createStatement().executeQuery("SELECT lease_owner FROM merge_job WHERE id = '" + id + "'")) {
            assertTrue(rs.next());
            String owner = rs.getString(1);
            long pid = Long.parseLong(owner.substring(0, owner.indexOf('@')));
            return replicas.stream().filter(r -> r.pid() == pid).findFirst().orElseThrow();
        }
    }

    /** Polls job {@code id} until it ends (3 minutes at most). */
    private static Job watch(String id) throws InterruptedException {
        return watch(jobs, id);
    }

    private static Job watch(MergeServiceGrpc.MergeServiceBlockingStub jobs, String id) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        Job job = null;
        while (System.nanoTime() < deadline) {
            job = jobs.getJob(JobRef.newBuilder().setId(id).build());
            if (job.getState() == JobState.SUCCEEDED || job.getState() == JobState.FAILED
                    || job.getState() == JobState.CANCELLED) {
                return job;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("job " + id + " did not end in 3 minutes: " + job);
    }

    private static JsonNode get(String path) throws Exception {
        HttpResponse<String> response = registry(path);
        assertEquals(200, response.statusCode(), path + ": " + response.body());
        return TestSystem.JSON.readTree(response.body());
    }

    /** GET {@code /api/v1/<path>} of the registry. */
    private static HttpResponse<String> registry(String path) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + registry.port()
                + "/api/v1/" + path)).header("Authorization", "Bearer " + TestSystem.ADMIN_TOKEN).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    /**
     * A replica holding a shard task of job {@code id} (it merges from the moment it claims), as a shard worker
     * (not the job's coordinator, not the replica the test talks to), if any.
     */
    private static ServiceProcess replicaMidShard(String id) throws Exception {
        try (Connection c = DriverManager.getConnection(postgres.getJdbcUrl("postgres", "jobs"));
             ResultSet rs = c.createStatement().executeQuery("SELECT t.lease_owner, j.lease_owner FROM merge_task t"
                     + " JOIN merge_job j ON j.id = t.job_id WHERE t.job_id = '" + id + "' AND t.state = 'RUNNING'")) {
            while (rs.next()) {
                String task = rs.getString(1);
                String coordinator = rs.getString(2);
                long pid = Long.parseLong(task.substring(0, task.indexOf('@')));
                if (coordinator != null && !coordinator.startsWith(pid + "@")) {
                    for (ServiceProcess replica : replicas.subList(1, replicas.size())) { // the first serves gRPC
                        if (replica.pid() == pid) {
                            return replica;
                        }
                    }
                }
            }
        }
        return null;
    }

    /** {@link #mergedBy} once at least {@code count} shards of job {@code id} are merged (a minute at most). */
    private static Map<String, String> awaitShardsMerged(String id, int count) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        Map<String, String> merged = mergedBy(id);
        while (merged.size() < count && System.nanoTime() < deadline) {
            Thread.sleep(20);
            merged = mergedBy(id);
        }
        return merged;
    }

    /** Which worker merged each shard of job {@code id}. */
    private static Map<String, String> mergedBy(String id) throws Exception {
        Map<String, String> owners = new LinkedHashMap<>();
        try (Connection c = DriverManager.getConnection(postgres.getJdbcUrl("postgres", "jobs"));
             ResultSet rs = c.createStatement().executeQuery("SELECT file, merged_by FROM merge_task WHERE job_id = '"
                     + id + "' AND state = 'DONE' ORDER BY shard")) {
            while (rs.next()) {
                owners.put(rs.getString(1), rs.getString(2));
            }
        }
        return owners;
    }

    /**
     * The version holds the files one worker's run of {@code recipe} writes, and its weights and index are the same
     * bytes (the card and the recipe name the job's pinned inputs, which the reference run here does not).
     */
    private static void assertSameAsOneWorker(String recipe, Job done) throws Exception {
        Path reference = reference(recipe);
        String prefix = done.getResultVersion().replaceAll("@\\d+$", "");
        String job = done.getId();
        TreeSet<String> stored = new TreeSet<>();
        for (BlobInfo blob : bucket.list("merged/" + prefix + "/" + job + "/")) {
            stored.add(blob.key().substring(blob.key().lastIndexOf('/') + 1));
        }
        assertEquals(names(reference), stored, done.getResultVersion());
        for (String name : names(reference)) {
            if (!name.endsWith(".safetensors") && !name.endsWith(".index.json") && !name.equals("config.json")) {
                continue;
            }
            byte[] bytes = bucket.readAllBytes("merged/" + prefix + "/" + job + "/" + name);
            assertArrayEquals(Files.readAllBytes(reference.resolve(name)), bytes, done.getResultVersion() + ": " + name);
        }
    }

    private static final Map<String, Path> REFERENCES = new LinkedHashMap<>();

    /** {@code recipe} merged here by one worker, as the service merges it (seed, shard size; named as the job's). */
    private static Path reference(String recipe) throws Exception {
        Path known = REFERENCES.get(recipe);
        if (known != null) {
            return known;
        }
        Path out = work.resolve("reference-" + REFERENCES.size()).resolve("out");
        MergeOptions options = MergeOptions.defaults().withSeed(5).withOutShardSize(SHARD).withThreads(2)
                .withCache(work.resolve("reference-cache"), 1L << 30);
        new MergeExecutor(options, p -> { }, new AtomicBoolean()).run(RecipeParser.parse(recipe), out);
        REFERENCES.put(recipe, out);
        return out;
    }

    private static TreeSet<String> names(Path dir) throws Exception {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString()).collect(java.util.stream.Collectors.toCollection(TreeSet::new));
        }
    }
}
