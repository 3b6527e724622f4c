//! The bb8 connection pool: each pooled connection carries its session settings and the
//! workload's prepared statements, and every checkout is timed so pool wait is reported apart
//! from query time.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::target::{ConnectError, Target};
use crate::workload::failure::Failure;
use crate::workload::ops::Statements;

/// A pooled connection: the client and its prepared statements.
pub struct Conn {
    /// The connection.
    pub client: Client,
    /// The workload's statements, prepared on this connection.
    pub stmts: Statements,
}

/// Builds connections for bb8: connect, apply the session settings, prepare.
pub struct Manager {
    target: Target,
    session_sql: String,
}

impl bb8::ManageConnection for Manager {
    type Connection = Conn;
    type Error = ConnectError;

    async fn connect(&self) -> Result<Conn, ConnectError> {
        let client = self.target.connect().await?;
        if !self.session_sql.is_empty() {
            client.batch_execute(&self.session_sql).await?;
        }
        let stmts = Statements::prepare(&client).await?;
        Ok(Conn { client, stmts })
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), ConnectError> {
        conn.client.simple_query("").await?;
        Ok(())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

/// Session settings applied to every pooled connection.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// `hnsw.ef_search`.
    pub ef_search: u32,
    /// `hnsw.iterative_scan` (`off`, `relaxed_order`, `strict_order`).
    pub iterative_scan: String,
    /// `statement_timeout`, if any.
    pub statement_timeout: Option<Duration>,
}

impl Session {
    fn sql(&self) -> String {
        let mut sql = format!(
            "SET hnsw.ef_search = {}; SET hnsw.iterative_scan = {};",
            self.ef_search, self.iterative_scan
        );
        if let Some(t) = self.statement_timeout {
            sql.push_str(&format!(" SET statement_timeout = {};", t.as_millis()));
        }
        sql
    }
}

/// A pool of prepared connections to one endpoint.
pub type Pool = bb8::Pool<Manager>;

/// Builds a pool of up to `size` connections; connections open lazily, so a slow server does
/// not delay the start, but one is opened now to fail fast on a bad endpoint.
pub async fn build(
    target: &Target,
    session: &Session,
    size: u32,
    checkout_timeout: Duration,
) -> Result<Pool, ConnectError> {
    let manager = Manager {
        target: target.clone(),
        session_sql: session.sql(),
    };
    let pool = bb8::Pool::builder()
        .max_size(size.max(1))
        .min_idle(Some(0))
        .connection_timeout(checkout_timeout)
        .test_on_check_out(false)
        // Without this, bb8 retries a refused connect until the checkout times out, and a
        // server restart would be reported as pool exhaustion.
        .retry_connection(false)
        .build_unchecked(manager);
    // Fail fast (with the real error, not a pool timeout) when the endpoint is unusable.
    let first = pool.dedicated_connection().await?;
    drop(first);
    Ok(pool)
}

/// Checks a connection out, returning it with the time spent waiting.
pub async fn checkout(
    pool: &Pool,
) -> Result<(bb8::PooledConnection<'_, Manager>, Duration), Failure> {
    let started = Instant::now();
    match pool.get().await {
        Ok(conn) => Ok((conn, started.elapsed())),
        Err(bb8::RunError::TimedOut) => Err(Failure::PoolTimeout),
        Err(bb8::RunError::User(ConnectError::Postgres(e))) => Err(match Failure::from_pg(&e) {
            Failure::Client => Failure::ConnectionLost,
            other => other,
        }),
        Err(bb8::RunError::User(ConnectError::Target(_))) => Err(Failure::Client),
    }
}
