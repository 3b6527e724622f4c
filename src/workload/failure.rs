//! Classifies a failed operation into a small, stable set of labels: these become CSV rows,
//! summary keys and (later) metric labels, so they must never be free-form error text.

use std::fmt;

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Failure {
    /// No pool connection became free within the connection timeout.
    PoolTimeout,
    /// The connection broke (server restarted, backend terminated, network).
    ConnectionLost,
    /// `statement_timeout` cancelled the query (SQLSTATE 57014).
    StatementTimeout,
    /// A named prepared statement was missing (26000) or already there (42P05): the server
    /// session changed under the connection, as behind PgBouncer in transaction mode.
    PreparedStatement,
    /// The server raised an error: the two-character SQLSTATE class (e.g. `53` resources).
    Sqlstate(String),
    /// Anything else on the client side (encoding, protocol).
    Client,
}

impl Failure {
    /// Classifies a tokio-postgres error by SQLSTATE and connection state, never by message.
    pub fn from_pg(e: &tokio_postgres::Error) -> Failure {
        if let Some(code) = e.code() {
            let code = code.code();
            if code == "57014" {
                return Failure::StatementTimeout;
            }
            if is_prepared_statement_lost(code) {
                return Failure::PreparedStatement;
            }
            // Admin shutdown / crash shutdown / cannot connect now: the connection is gone.
            if matches!(code, "57P01" | "57P02" | "57P03") {
                return Failure::ConnectionLost;
            }
            return Failure::Sqlstate(code.get(..2).unwrap_or(code).to_string());
        }
        if e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()) {
            return Failure::ConnectionLost;
        }
        Failure::Client
    }

    /// Stable label: `pool_timeout`, `connection_lost`, `statement_timeout`, `sqlstate_XX`,
    /// `client`.
    pub fn label(&self) -> String {
        match self {
            Failure::PoolTimeout => "pool_timeout".into(),
            Failure::ConnectionLost => "connection_lost".into(),
            Failure::StatementTimeout => "statement_timeout".into(),
            Failure::PreparedStatement => PREPARED_STATEMENT.into(),
            Failure::Sqlstate(class) => format!("sqlstate_{class}"),
            Failure::Client => "client".into(),
        }
    }
}

/// The label of [`Failure::PreparedStatement`].
pub const PREPARED_STATEMENT: &str = "prepared_statement";

/// What to do when named prepared statements go missing.
pub const POOLER_HINT: &str = "named prepared statements did not survive on the server \
     session (SQLSTATE 26000 or 42P05): the target is probably PgBouncer in transaction mode \
     (before 1.21 it does not keep them); run with --statement-mode unnamed";

/// SQLSTATE 26000 (statement does not exist) or 42P05 (already exists).
pub fn is_prepared_statement_lost(code: &str) -> bool {
    matches!(code, "26000" | "42P05")
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_stable() {
        assert_eq!(Failure::PoolTimeout.label(), "pool_timeout");
        assert_eq!(Failure::Sqlstate("53".into()).label(), "sqlstate_53");
        assert_eq!(Failure::StatementTimeout.to_string(), "statement_timeout");
    }
}
