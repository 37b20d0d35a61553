package io.modelmerge.service.db;

import java.sql.SQLException;

/** A database failure that is not the caller's fault (connection lost, a bug in a query). */
public final class DatabaseException extends RuntimeException {
    public DatabaseException(SQLException cause) {
        super("Database error " + cause.getSQLState() + ": " + cause.getMessage(), cause);
    }

    /**
     * Whether the database could not be reached or is going away (SQLSTATE classes 08 and 57P, too many
     * connections, or no pooled connection in time): worth a retry later, unlike a failing query.
     */
    public boolean unavailable() {
        SQLException e = (SQLException) getCause();
        String state = e.getSQLState();
        if (state != null) {
            return state.startsWith("08") || state.startsWith("57P") || state.equals("53300");
        }
        String message = String.valueOf(e.getMessage());
        return message.contains("Acquisition timeout") || message.contains("connection has been closed")
                || message.contains("Connection refused");
    }
}
