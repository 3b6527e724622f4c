//! The one bb8 connection pool every mode uses: each pooled connection carries its session
//! settings and its prepared statements (the workload's, or `calibrate`'s single statement),
//! and every checkout is timed so pool wait is reported apart from query time.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_postgres::Client;

use super::schema::IndexKind;
use super::target::{ConnectError, Target};
use crate::workload::failure::Failure;
use crate::workload::ops::{StatementMode, Statements};
use crate::workload::Embedding;

/// What every connection of a pool prepares once, after its session settings.
pub trait Prepare: Send + Sync + 'static {
    /// The prepared statements a connection carries.
    type Prepared: Send + 'static;
    /// Prepares them on a new connection.
    fn prepare(
        &self,
        client: &Client,
    ) -> impl Future<Output = Result<Self::Prepared, tokio_postgres::Error>> + Send;
}

/// The workload's statements for an `embedding` column of this type, prepared or unnamed:
/// the load test's and the benchmarks' pools.
pub struct Workload(pub Embedding, pub StatementMode);

impl Prepare for Workload {
    type Prepared = Statements;

    async fn prepare(&self, client: &Client) -> Result<Statements, tokio_postgres::Error> {
        Statements::prepare(client, self.0, self.1).await
    }
}

/// A pooled connection: the client and its prepared statements.
pub struct Conn<P: Prepare = Workload> {
    /// The connection.
    pub client: Client,
    /// The statements, prepared on this connection.
    pub stmts: P::Prepared,
}

/// Builds connections for bb8: connect, apply the session settings, prepare.
pub struct Manager<P: Prepare> {
    target: Target,
    session_sql: String,
    prepare: P,
}

impl<P: Prepare> bb8::ManageConnection for Manager<P> {
    type Connection = Conn<P>;
    type Error = ConnectError;

    async fn connect(&self) -> Result<Conn<P>, ConnectError> {
        let client = self.target.connect().await?;
        if !self.session_sql.is_empty() {
            client.batch_execute(&self.session_sql).await?;
        }
        let stmts = self.prepare.prepare(&client).await?;
        Ok(Conn { client, stmts })
    }

    async fn is_valid(&self, conn: &mut Conn<P>) -> Result<(), ConnectError> {
        conn.client.simple_query("").await?;
        Ok(())
    }

    fn has_broken(&self, conn: &mut Conn<P>) -> bool {
        conn.client.is_closed()
    }
}

/// Session settings applied to every pooled connection.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The index searched: which of the settings below apply.
    pub index: IndexKind,
    /// `hnsw.ef_search`.
    pub ef_search: u32,
    /// `ivfflat.probes`.
    pub probes: u32,
    /// `hnsw.iterative_scan` or `ivfflat.iterative_scan` (`off`, `relaxed_order`,
    /// `strict_order`: HNSW only).
    pub iterative_scan: String,
    /// `statement_timeout`, if any.
    pub statement_timeout: Option<Duration>,
    /// Named prepared statements, or unnamed ones (through PgBouncer in transaction mode).
    pub statement_mode: StatementMode,
}

impl Session {
    /// The settings, as PostgreSQL names them.
    fn settings(&self) -> Vec<(&'static str, String)> {
        let mut settings = match self.index {
            IndexKind::Hnsw => vec![
                ("hnsw.ef_search", self.ef_search.to_string()),
                ("hnsw.iterative_scan", self.iterative_scan.clone()),
            ],
            IndexKind::Ivfflat => vec![
                ("ivfflat.probes", self.probes.to_string()),
                ("ivfflat.iterative_scan", self.iterative_scan.clone()),
            ],
        };
        if let Some(t) = self.statement_timeout {
            settings.push(("statement_timeout", t.as_millis().to_string()));
        }
        settings
    }

    /// `SET` statements, as our connections apply them.
    pub fn sql(&self) -> String {
        let sets: Vec<String> = self
            .settings()
            .into_iter()
            .map(|(name, value)| format!("SET {name} = {value};"))
            .collect();
        sets.join(" ")
    }

    /// `-c name=value` options, as libpq tools (pgbench) take them in `PGOPTIONS`.
    pub fn pgoptions(&self) -> String {
        let options: Vec<String> = self
            .settings()
            .into_iter()
            .map(|(name, value)| format!("-c {name}={value}"))
            .collect();
        options.join(" ")
    }
}

/// A pool of prepared connections to one endpoint, with what bb8 does not keep: the most
/// connections ever in use at once, and the failures of connects bb8 opened in the background.
pub struct Pool<P: Prepare = Workload> {
    inner: bb8::Pool<Manager<P>>,
    watch: Arc<Watch>,
}

impl<P: Prepare> Clone for Pool<P> {
    fn clone(&self) -> Self {
        Pool {
            inner: self.inner.clone(),
            watch: self.watch.clone(),
        }
    }
}

/// Shared between the pool's handles and its error sink.
#[derive(Debug, Default)]
struct Watch {
    peak_in_use: AtomicU32,
    // The peak since the last `take_recent_peak`, for the report's chart over time.
    recent_peak: AtomicU32,
    // Connects that failed, each with when it failed; each is handed to one waiting checkout.
    failed_connects: Mutex<VecDeque<(Instant, Failure)>>,
    connect_failed: Notify,
}

/// bb8's error sink: a background connect failed. bb8 never hands that error to the `get()`
/// that waits for the connection, which would wait out the whole checkout timeout; an endpoint
/// that is down (a restarting primary or replica) must fail fast as `connection_lost`, not
/// hang for `--pool-timeout` and be reported as `pool_timeout`.
#[derive(Debug, Clone)]
struct Sink(Arc<Watch>);

impl bb8::ErrorSink<ConnectError> for Sink {
    fn sink(&self, error: ConnectError) {
        let failure = connect_failure(error);
        let mut failed = self
            .0
            .failed_connects
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Nobody may be waiting (the checkout that asked for it timed out): keep a few only.
        if failed.len() >= 64 {
            failed.pop_front();
        }
        failed.push_back((Instant::now(), failure));
        drop(failed);
        self.0.connect_failed.notify_waiters();
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<ConnectError>> {
        Box::new(self.clone())
    }
}

impl Watch {
    /// One connect failure that happened after `since`, if any; older ones are dropped.
    fn take_failure(&self, since: Instant) -> Option<Failure> {
        let mut failed = self
            .failed_connects
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while let Some((at, failure)) = failed.pop_front() {
            if at >= since {
                return Some(failure);
            }
        }
        None
    }
}

/// Builds a pool of up to `size` connections with the workload's statements (see
/// [`build_with`]).
pub async fn build(
    target: &Target,
    session: &Session,
    embedding: Embedding,
    size: u32,
    checkout_timeout: Duration,
) -> Result<Pool, ConnectError> {
    let workload = Workload(embedding, session.statement_mode);
    build_with(target, session, workload, size, checkout_timeout).await
}

/// Builds a pool of up to `size` connections that prepare `prepare`. bb8 opens connections
/// when checkouts find none idle, so a slow server does not delay the start; one is opened
/// now, to fail fast (with the real error, not a pool timeout) on a bad endpoint, and kept.
pub async fn build_with<P: Prepare>(
    target: &Target,
    session: &Session,
    prepare: P,
    size: u32,
    checkout_timeout: Duration,
) -> Result<Pool<P>, ConnectError> {
    let manager = Manager {
        target: target.clone(),
        session_sql: session.sql(),
        prepare,
    };
    let watch = Arc::new(Watch::default());
    let inner = bb8::Pool::builder()
        .max_size(size.max(1))
        .min_idle(Some(0))
        .connection_timeout(checkout_timeout)
        .test_on_check_out(false)
        // Without this, bb8 retries a refused connect until the checkout times out; with it,
        // the failure reaches our sink and, through it, a waiting checkout.
        .retry_connection(false)
        .error_sink(Box::new(Sink(watch.clone())))
        .build_unchecked(manager);
    let first = inner.dedicated_connection().await?;
    let _ = inner.add(first);
    Ok(Pool { inner, watch })
}

impl<P: Prepare> Pool<P> {
    /// Opens connections until the pool holds all it may, so that no measured run pays for
    /// connecting (pgbench connects before its clock starts too).
    pub async fn fill(&self) -> Result<(), ConnectError> {
        while self.inner.state().connections < self.max_size() {
            let conn = self.inner.dedicated_connection().await?;
            if self.inner.add(conn).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Connections open and idle now.
    pub fn state(&self) -> bb8::State {
        self.inner.state()
    }

    /// Most connections the pool may open.
    pub fn max_size(&self) -> u32 {
        self.inner.config().max_size
    }

    /// Most connections in use at once so far (taken at every checkout, so no spike is
    /// missed between samples).
    pub fn peak_in_use(&self) -> u32 {
        self.watch.peak_in_use.load(Ordering::Relaxed)
    }

    /// Most connections in use at once since the previous call, which starts a new interval
    /// at the number in use now.
    pub fn take_recent_peak(&self) -> u32 {
        let state = self.inner.state();
        let in_use = state.connections.saturating_sub(state.idle_connections);
        self.watch
            .recent_peak
            .swap(in_use, Ordering::Relaxed)
            .max(in_use)
    }

    /// Checks a connection out, returning it with the time spent waiting.
    ///
    /// Connections are opened only by bb8, never beside it, so the pool never opens one more
    /// than it keeps: a steady-state run opens no connection once the pool holds what the
    /// load needs. A background connect that fails while we wait fails this checkout at once
    /// (each failure fails one waiting checkout), as the connect it was would have.
    pub async fn checkout(
        &self,
    ) -> Result<(bb8::PooledConnection<'_, Manager<P>>, Duration), Failure> {
        let started = Instant::now();
        let get = self.inner.get();
        tokio::pin!(get);
        let conn = loop {
            let failed = self.watch.connect_failed.notified();
            tokio::select! {
                got = &mut get => break got,
                _ = failed => {
                    if let Some(failure) = self.watch.take_failure(started) {
                        return Err(failure);
                    }
                }
            }
        };
        match conn {
            Ok(conn) => {
                let state = self.inner.state();
                let in_use = state.connections.saturating_sub(state.idle_connections);
                self.watch.peak_in_use.fetch_max(in_use, Ordering::Relaxed);
                self.watch.recent_peak.fetch_max(in_use, Ordering::Relaxed);
                Ok((conn, started.elapsed()))
            }
            Err(bb8::RunError::TimedOut) => Err(Failure::PoolTimeout),
            Err(bb8::RunError::User(e)) => Err(connect_failure(e)),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_list_of_settings_gives_set_statements_and_pgoptions() {
        let session = Session {
            index: IndexKind::Hnsw,
            probes: 1,
            ef_search: 40,
            iterative_scan: "off".into(),
            statement_timeout: Some(Duration::from_millis(1500)),
            statement_mode: StatementMode::Prepared,
        };
        assert_eq!(
            session.sql(),
            "SET hnsw.ef_search = 40; SET hnsw.iterative_scan = off; SET statement_timeout = 1500;"
        );
        assert_eq!(
            session.pgoptions(),
            "-c hnsw.ef_search=40 -c hnsw.iterative_scan=off -c statement_timeout=1500"
        );
    }
}
