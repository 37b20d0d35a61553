package io.modelmerge.service.local;

import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.annotation.Priority;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.interceptor.Interceptor;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Liveness;

/**
 * The embedded database inside the application's life: stopped after every other shutdown observer (the merge
 * workers hand their jobs back through it first), and reported by liveness, since a process whose embedded
 * PostgreSQL died cannot recover by itself and should be restarted.
 */
@ApplicationScoped
@Liveness
public class EmbeddedDatabaseLifecycle implements HealthCheck {

    void started(@Observes StartupEvent event) {
        EmbeddedDefaults.applicationStarted();
    }

    /** Observed last: LIBRARY_AFTER plus a margin runs after the application's own observers. */
    void stopping(@Observes @Priority(Interceptor.Priority.LIBRARY_AFTER + 1000) ShutdownEvent event) {
        EmbeddedDefaults.stop();
    }

    @Override
    public HealthCheckResponse call() {
        var builder = HealthCheckResponse.named("embedded-postgresql");
        return EmbeddedDefaults.embeddedAlive().map(alive -> alive
                ? builder.up().build()
                : builder.down().withData("reason", "the embedded PostgreSQL is not running; restart the service").build())
                .orElseGet(() -> builder.up().withData("embedded", false).build());
    }
}
