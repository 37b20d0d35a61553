package io.modelmerge.registry.api;

import io.modelmerge.registry.model.RegistryException;
import java.util.List;

/**
 * An error response as RFC 9457 problem details ({@code application/problem+json}); {@code errors} lists the
 * request fields at fault, each with the reason.
 */
public record Problem(String type, String title, int status, String detail, String instance,
                      List<RegistryException.FieldError> errors) {
    public static final String MEDIA_TYPE = "application/problem+json";
}
