//! The bb8 connection pool: each pooled connection carries its session settings and the
//! workload's prepared statements, and every checkout is timed so pool wait is reported apart
//! from query time.

use std::sync::atomic::{AtomicU32, Ordering};
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
        // Without this, bb8 retries a refused connect until the checkout times out. Even so,
        // bb8 never hands a failed connect to the waiting `get()`: see [`checkout`].
        .retry_connection(false)
        .build_unchecked(manager);
    // Fail fast (with the real error, not a pool timeout) when the endpoint is unusable.
    let first = pool.dedicated_connection().await?;
    drop(first);
    Ok(pool)
}

/// Checks a connection out, returning it with the time spent waiting.
///
/// When no connection is idle and the pool may grow, the new connection is opened here rather
/// than by bb8: bb8 sends a failed background connect to its error sink, never to the waiting
/// `get()`, which then waits out the whole checkout timeout. An endpoint that is down (a
/// restarting primary or replica) must fail fast as `connection_lost`, not hang for
/// `--pool-timeout` and be reported as `pool_timeout`.
pub async fn checkout(
    pool: &Pool,
) -> Result<(bb8::PooledConnection<'_, Manager>, Duration), Failure> {
    let started = Instant::now();
    let state = pool.state();
    if state.idle_connections == 0 {
        if let Some(_opening) = Opening::reserve(state.connections, pool.config().max_size) {
            match pool.dedicated_connection().await {
                // Someone else may take it first; then get() waits as usual.
                Ok(conn) => drop(pool.add(conn)),
                Err(e) => return Err(connect_failure(e)),
            }
        }
    }
    match pool.get().await {
        Ok(conn) => Ok((conn, started.elapsed())),
        Err(bb8::RunError::TimedOut) => Err(Failure::PoolTimeout),
        Err(bb8::RunError::User(e)) => Err(connect_failure(e)),
    }
}

/// Connections [`checkout`] is opening right now (all pools together), so that 1000 users
/// starting at once open no more than a pool can hold: each surplus connect costs the server a
/// backend and us CPU and memory, and beyond `max_connections` fails as `sqlstate_53`.
static OPENING: AtomicU32 = AtomicU32::new(0);

/// One reserved connect, released on drop (also when the checkout is cancelled).
struct Opening;

impl Opening {
    fn reserve(connections: u32, max: u32) -> Option<Opening> {
        let opening = OPENING.fetch_add(1, Ordering::AcqRel);
        if connections + opening < max {
            Some(Opening)
        } else {
            OPENING.fetch_sub(1, Ordering::AcqRel);
            None
        }
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        OPENING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A failed connect: the server is unreachable or refused us.
fn connect_failure(e: ConnectError) -> Failure {
    match e {
        ConnectError::Postgres(e) => match Failure::from_pg(&e) {
            Failure::Client => Failure::ConnectionLost,
            other => other,
        },
        ConnectError::Target(_) => Failure::Client,
    }
}
