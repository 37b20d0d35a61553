package io.modelmerge.mergeservice;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;

/** One of our services started from its built jar as a separate process, on a free port, until it is ready. */
final class ServiceProcess implements AutoCloseable {
    private final String name;
    private final Path jar;
    private final Map<String, String> environment;
    private final Path log;
    private final int port;
    /** Null: plain HTTP on {@link #port}; else HTTPS there, checked with this context. */
    private final SSLContext tls;
    private Process process;

    private ServiceProcess(String name, Path jar, Map<String, String> environment, Path log, int port, SSLContext tls) {
        this.name = name;
        this.jar = jar;
        this.environment = environment;
        this.log = log;
        this.port = port;
        this.tls = tls;
    }

    static ServiceProcess start(String name, String jarProperty, Map<String, String> environment, Path logDir)
            throws Exception {
        return start(name, jarProperty, environment, logDir, null);
    }

    /**
     * As {@link #start(String, String, Map, Path)}; with {@code tls}, the service serves HTTPS (and gRPC over TLS)
     * on {@link #port()}, its TLS settings in {@code environment}, and readiness is asked over HTTPS trusting
     * {@code tls}.
     */
    static ServiceProcess start(String name, String jarProperty, Map<String, String> environment, Path logDir,
                                SSLContext tls) throws Exception {
        Path jar = Path.of(System.getProperty(jarProperty));
        if (!Files.isRegularFile(jar)) {
            throw new IllegalStateException(name + " is not built: " + jar + " (run ./mvnw verify from the root)");
        }
        ServiceProcess service = new ServiceProcess(name, jar, environment, logDir.resolve(name + ".log"), freePort(),
                tls);
        service.start();
        return service;
    }

    /** Starts (again, after a kill) and waits until the service answers ready. */
    void start() throws Exception {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        command.addAll(List.of(System.getProperty("modelmerge.jvm.flags", "").split(" ")));
        command.addAll(List.of("--sun-misc-unsafe-memory-access=allow", "-Xmx2g", "-jar", jar.toString()));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        builder.environment().putAll(environment);
        if (tls == null) {
            builder.environment().put("QUARKUS_HTTP_PORT", Integer.toString(port));
        } else {
            builder.environment().put("QUARKUS_HTTP_SSL_PORT", Integer.toString(port));
            builder.environment().put("QUARKUS_HTTP_PORT", Integer.toString(freePort())); // unused: insecure is off
        }
        process = builder.start();
        HttpClient http = tls == null ? HttpClient.newHttpClient() : HttpClient.newBuilder().sslContext(tls).build();
        String scheme = tls == null ? "http" : "https";
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException(name + " exited with " + process.exitValue() + "; log:\n" + tail());
            }
            try {
                HttpResponse<Void> ready = http.send(HttpRequest.newBuilder(URI.create(scheme + "://127.0.0.1:" + port
                        + "/q/health/ready")).build(), HttpResponse.BodyHandlers.discarding());
                if (ready.statusCode() == 200) {
                    return;
                }
            } catch (IOException notYet) {
                // not listening yet
            }
            Thread.sleep(200);
        }
        throw new IllegalStateException(name + " was not ready in 120 s; log:\n" + tail());
    }

    int port() {
        return port;
    }

    boolean alive() {
        return process != null && process.isAlive();
    }

    /** The running process's id (the merge service names its workers {@code <pid>@<host>-...}). */
    long pid() {
        return process.pid();
    }

    /** Ends the process the hard way (SIGKILL): no shutdown hook runs, its leases are left to expire. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor();
    }

    /**
     * Stops the process the graceful way (SIGTERM) and returns how many milliseconds it took to exit; fails if it
     * has not exited within {@code seconds}.
     */
    long terminate(int seconds) throws InterruptedException {
        long start = System.nanoTime();
        process.destroy();
        if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError(name + " did not exit within " + seconds + " s of SIGTERM");
        }
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    }

    String tail() throws IOException {
        List<String> lines = Files.readAllLines(log);
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 60), lines.size()));
    }

    @Override
    public void close() throws InterruptedException {
        if (process != null && process.isAlive()) {
            process.destroy();
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
