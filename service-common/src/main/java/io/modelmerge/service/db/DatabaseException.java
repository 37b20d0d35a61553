package io.modelmerge.service.db;

import java.sql.SQLException;

/** A database failure that is not the caller's fault (connection lost, a bug in a query). */
public final class DatabaseException extends RuntimeException {
    public DatabaseException(SQLException cause) {
        super("Database error " + cause.getSQLState() + ": " + cause.getMessage(), cause);
    }

    /** Whether {@code e} is a unique-constraint violation (SQLSTATE 23505). */
    public static boolean isUniqueViolation(SQLException e) {
        return "23505".equals(e.getSQLState());
    }
}
