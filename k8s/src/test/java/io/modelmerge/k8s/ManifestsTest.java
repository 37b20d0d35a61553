package io.modelmerge.k8s;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Every kustomize overlay renders ({@code kubectl kustomize}) and each rendered object reads strictly as its
 * Kubernetes API type (fabric8's model of the API schemas): a field the API does not define fails, where the API
 * server would drop or refuse it. Then what each overlay is for: probes, non-root, budgets, replicas, scaling, GPUs.
 */
class ManifestsTest {
    private static final Path ROOT = Path.of(".").toAbsolutePath().normalize();
    private static final ObjectMapper YAML = YAMLMapper.builder(new YAMLFactory())
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES).build();
    private static final ObjectMapper JSON = JsonMapper.builder().build();

    /** The API types of the objects the manifests hold, by apiVersion and kind. */
    private static final Map<String, Class<? extends HasMetadata>> TYPES = Map.of(
            "v1/ConfigMap", ConfigMap.class,
            "v1/Secret", Secret.class,
            "v1/Service", Service.class,
            "v1/Namespace", Namespace.class,
            "apps/v1/Deployment", Deployment.class,
            "apps/v1/StatefulSet", StatefulSet.class,
            "policy/v1/PodDisruptionBudget", PodDisruptionBudget.class,
            "autoscaling/v2/HorizontalPodAutoscaler", HorizontalPodAutoscaler.class,
            "batch/v1/Job", Job.class);

    @Test
    void theBaseRunsBothServicesNonRootWithProbesBudgetsAndAGracefulStop() throws Exception {
        List<HasMetadata> objects = render("base");
        for (String name : List.of("modelmerge-registry", "modelmerge-merge-service")) {
            Deployment deployment = one(objects, Deployment.class, name);
            var pod = deployment.getSpec().getTemplate().getSpec();
            assertTrue(pod.getSecurityContext().getRunAsNonRoot(), name);
            Container container = pod.getContainers().getFirst();
            assertNotNull(container.getReadinessProbe(), name + " readiness");
            assertNotNull(container.getLivenessProbe(), name + " liveness");
            assertNotNull(container.getResources().getRequests().get("memory"), name + " memory request");
            assertFalse(container.getSecurityContext().getAllowPrivilegeEscalation(), name);
            assertTrue(container.getEnv().stream().anyMatch(e -> e.getName().equals("QUARKUS_DATASOURCE_JDBC_URL")
                    && e.getValueFrom().getSecretKeyRef().getName().equals("modelmerge-database")), name + " database");
            one(objects, Service.class, name);
            one(objects, PodDisruptionBudget.class, name);
        }
        var merge = one(objects, Deployment.class, "modelmerge-merge-service").getSpec().getTemplate().getSpec();
        assertNotNull(merge.getContainers().getFirst().getReadinessProbe().getGrpc(), "gRPC health for readiness");
        // a stopping replica hands its merge or shard back within 20 s (JobWorkers), inside the grace period
        assertTrue(merge.getTerminationGracePeriodSeconds() > 20);
        assertEquals("true", one(objects, ConfigMap.class, "modelmerge-config").getData().get("MODELMERGE_MERGE_SPLIT_JOBS"));
    }

    @Test
    void theBaseRunsTheImagesTheBuildMakesAsTheirUserOnTheirPorts() throws Exception {
        List<HasMetadata> objects = render("base");
        Map<String, String> services = Map.of("modelmerge-registry", "registry-service",
                "modelmerge-merge-service", "merge-service");
        for (var service : services.entrySet()) {
            Properties image = new Properties();
            try (var in = Files.newInputStream(ROOT.resolveSibling(service.getValue())
                    .resolve("src/main/resources/application.properties"))) {
                image.load(in);
            }
            var pod = one(objects, Deployment.class, service.getKey()).getSpec().getTemplate().getSpec();
            Container container = pod.getContainers().getFirst();
            assertEquals(image.getProperty("quarkus.container-image.group") + "/"
                    + image.getProperty("quarkus.container-image.name") + ":"
                    + image.getProperty("quarkus.container-image.tag"), container.getImage(), service.getKey());
            assertEquals(Long.valueOf(image.getProperty("quarkus.jib.user")), pod.getSecurityContext().getRunAsUser());
            assertEquals(Integer.valueOf(image.getProperty("quarkus.jib.ports")),
                    container.getPorts().getFirst().getContainerPort(), service.getKey());
        }
    }

    @Test
    void theLocalOverlayBringsItsOwnDatabaseAndS3AndOneReplicaEach() throws Exception {
        List<HasMetadata> objects = render("overlays/local");
        assertTrue(objects.stream().allMatch(o -> o instanceof Namespace || "modelmerge".equals(o.getMetadata().getNamespace())));
        assertEquals(1, one(objects, Deployment.class, "modelmerge-merge-service").getSpec().getReplicas());
        assertEquals(1, one(objects, Deployment.class, "modelmerge-registry").getSpec().getReplicas());
        one(objects, StatefulSet.class, "modelmerge-postgres");
        one(objects, StatefulSet.class, "modelmerge-s3");
        one(objects, Job.class, "modelmerge-create-bucket");
        assertTrue(one(objects, Secret.class, "modelmerge-database").getData().containsKey("merge-jdbc-url"));
        one(objects, Secret.class, "modelmerge-s3");
        // the merge service calls the registry with a token the local overlay provides
        assertTrue(one(objects, Secret.class, "modelmerge-tokens").getData().containsKey("merge-service"));
    }

    @Test
    void productionUsesExternalSecretsSeveralReplicasAndScalesOnTheQueue() throws Exception {
        List<HasMetadata> objects = render("overlays/production");
        assertTrue(objects.stream().noneMatch(o -> o instanceof Secret), "the operator provides the secrets");
        assertTrue(objects.stream().noneMatch(o -> o instanceof StatefulSet), "no database or S3 in the cluster");
        assertEquals(3, one(objects, Deployment.class, "modelmerge-merge-service").getSpec().getReplicas());
        HorizontalPodAutoscaler hpa = one(objects, HorizontalPodAutoscaler.class, "modelmerge-merge-service");
        assertEquals("modelmerge_queue_depth", hpa.getSpec().getMetrics().getFirst().getExternal().getMetric().getName());
        assertTrue(hpa.getSpec().getMinReplicas() >= 3);
    }

    @Test
    void theGpuOverlaySchedulesTheMergeServiceOnGpuNodes() throws Exception {
        List<HasMetadata> objects = render("overlays/gpu");
        var pod = one(objects, Deployment.class, "modelmerge-merge-service").getSpec().getTemplate().getSpec();
        assertEquals("1", pod.getContainers().getFirst().getResources().getLimits().get("nvidia.com/gpu").toString());
        assertEquals("nvidia.com/gpu", pod.getTolerations().getFirst().getKey());
        assertEquals("true", pod.getNodeSelector().get("nvidia.com/gpu.present"));
        var registry = one(objects, Deployment.class, "modelmerge-registry").getSpec().getTemplate().getSpec();
        assertTrue(registry.getTolerations() == null || registry.getTolerations().isEmpty(), "only the merge service");
    }

    /** The check is strict: a misspelt field, at the top or deep in a pod, fails by name. */
    @Test
    void aFieldTheApiDoesNotDefineIsRefused() {
        String deployment = """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: x}
                spec:
                  replicas: 1
                  selector: {matchLabels: {a: b}}
                  template:
                    metadata: {labels: {a: b}}
                    spec:
                      containers:
                        - name: c
                          image: i
                          readinessProbe: {httpGet: {path: /, port: 80}, periodSecond: 5}
                """;
        AssertionError deep = assertThrows(AssertionError.class, () -> validate(deployment));
        assertTrue(deep.getMessage().contains("periodSecond"), deep.getMessage());
        AssertionError top = assertThrows(AssertionError.class, () -> validate(deployment.replace("replicas", "replica")));
        assertTrue(top.getMessage().contains("replica"), top.getMessage());
    }

    private static List<HasMetadata> render(String overlay) throws Exception {
        Process kubectl;
        try {
            kubectl = new ProcessBuilder("kubectl", "kustomize", ROOT.resolve(overlay).toString())
                    .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        } catch (IOException e) {
            throw new AssertionError("kubectl is needed to render the overlays (.ci/run installs it): " + e.getMessage());
        }
        String rendered = new String(kubectl.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(kubectl.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, kubectl.exitValue(), "kubectl kustomize " + overlay);
        List<HasMetadata> objects = new ArrayList<>();
        for (String document : rendered.split("(?m)^---$")) {
            if (!document.isBlank()) {
                objects.add(validate(document));
            }
        }
        assertFalse(objects.isEmpty(), overlay + " rendered nothing");
        Files.writeString(Path.of("target", overlay.replace('/', '-') + ".yaml"), rendered);
        return objects;
    }

    /** Reads one rendered object as its API type, refusing any field the type does not define. */
    private static HasMetadata validate(String document) throws Exception {
        JsonNode tree = YAML.readTree(document);
        String type = tree.path("apiVersion").asText() + "/" + tree.path("kind").asText();
        Class<? extends HasMetadata> api = TYPES.get(type);
        if (api == null) {
            throw new AssertionError("no API type known for " + type);
        }
        HasMetadata object = JSON.treeToValue(tree, api);
        List<String> unknown = new ArrayList<>();
        unknownFields(object, type + " " + tree.path("metadata").path("name").asText(), unknown,
                java.util.Collections.newSetFromMap(new IdentityHashMap<>()));
        if (!unknown.isEmpty()) {
            throw new AssertionError("fields the Kubernetes API does not define: " + unknown);
        }
        return object;
    }

    /**
     * fabric8's types keep fields they do not define in {@code additionalProperties} instead of failing: walks the
     * object and names every such field with its path.
     */
    private static void unknownFields(Object value, String path, List<String> unknown, Set<Object> seen)
            throws IllegalAccessException, InvocationTargetException {
        if (value == null || !seen.add(value)) {
            return;
        }
        if (value instanceof Collection<?> items) {
            int i = 0;
            for (Object item : items) {
                unknownFields(item, path + "[" + i++ + "]", unknown, seen);
            }
            return;
        }
        if (value instanceof Map<?, ?> map) {
            for (var e : map.entrySet()) {
                unknownFields(e.getValue(), path + "." + e.getKey(), unknown, seen);
            }
            return;
        }
        if (!value.getClass().getName().startsWith("io.fabric8.kubernetes.api.model")) {
            return;
        }
        for (Method getter : value.getClass().getMethods()) {
            if (getter.getParameterCount() != 0 || Modifier.isStatic(getter.getModifiers())
                    || !getter.getName().startsWith("get") || getter.getDeclaringClass() == Object.class) {
                continue;
            }
            Object field = getter.invoke(value);
            if (getter.getName().equals("getAdditionalProperties")) {
                if (field instanceof Map<?, ?> extra && !extra.isEmpty()) {
                    extra.keySet().forEach(k -> unknown.add(path + "." + k));
                }
                continue;
            }
            unknownFields(field, path + "." + decapitalize(getter.getName().substring(3)), unknown, seen);
        }
    }

    private static String decapitalize(String name) {
        return name.isEmpty() ? name : Character.toLowerCase(name.charAt(0)) + name.substring(1);
    }

    private static <T extends HasMetadata> T one(List<HasMetadata> objects, Class<T> type, String name) {
        List<T> found = objects.stream().filter(type::isInstance).map(type::cast)
                .filter(o -> o.getMetadata().getName().equals(name)).toList();
        assertEquals(1, found.size(), type.getSimpleName() + " " + name);
        return found.getFirst();
    }
}
