//! The generators of one run meet in `pgvector_loadtest_runs`, a table of the target database
//! the harness owns: each registers (run id, index, count, host, pid); when all N are there,
//! each computes the same start from the same rows — 2 s after the last registration, or
//! `--start-at` — on the server's clock, so the generators' clocks need not agree. A generator
//! that waits longer than `--rendezvous-timeout` removes its row and fails the run.

use std::time::{Duration, Instant, UNIX_EPOCH};

use tokio_postgres::Client;

use super::Worker;
use crate::db::target::{describe_pg_error, ConnectError, Target};
use crate::shutdown::Shutdown;

/// The table (created by the first generator, under a lock so that several may try at once).
const CREATE: &str = "CREATE TABLE IF NOT EXISTS pgvector_loadtest_runs (
    run_id text NOT NULL,
    worker integer NOT NULL,
    workers integer NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at timestamptz,
    PRIMARY KEY (run_id, worker)
)";

/// The lead between the last arrival and the start: every generator polls within it.
const LEAD_S: f64 = 2.0;
/// How often a waiting generator looks.
const POLL: Duration = Duration::from_millis(200);

/// Why the generators did not start together.
#[derive(Debug, thiserror::Error)]
pub enum RendezvousError {
    /// No connection to the database.
    #[error("rendezvous: cannot connect to {target}: {source}")]
    Connect {
        /// Endpoint, without credentials.
        target: String,
        /// Cause.
        #[source]
        source: ConnectError,
    },
    /// A statement failed.
    #[error("rendezvous: {0}")]
    Sql(String),
    /// This index is taken in this run.
    #[error(
        "rendezvous: generator {index} of run {run_id} is already registered (by {host} pid \
         {pid} at {at}): give each generator its own index, or a new --run-id for a new run"
    )]
    Taken {
        /// The index.
        index: usize,
        /// The run.
        run_id: String,
        /// Who holds it.
        host: String,
        /// Its process.
        pid: i32,
        /// Since when.
        at: String,
    },
    /// The generators disagree on N.
    #[error(
        "rendezvous: run {run_id} has generators registered with --workers {theirs}, this one \
         has {ours}"
    )]
    Count {
        /// The run.
        run_id: String,
        /// Theirs.
        theirs: i32,
        /// Ours.
        ours: usize,
    },
    /// Not everyone came.
    #[error(
        "rendezvous: only {arrived} of {count} generators of run {run_id} arrived within \
         {timeout:?} (missing: {missing}); this one gives up and starts nothing"
    )]
    Timeout {
        /// The run.
        run_id: String,
        /// Who came.
        arrived: usize,
        /// N.
        count: usize,
        /// The indexes that did not.
        missing: String,
        /// How long this one waited.
        timeout: Duration,
    },
    /// More generators than namespaces to share.
    #[error("{count} generators need at least as many namespaces; the data has {namespaces}")]
    Namespaces {
        /// N.
        count: usize,
        /// The data's namespaces.
        namespaces: usize,
    },
    /// A signal came while waiting.
    #[error("rendezvous: interrupted")]
    Interrupted,
}

impl RendezvousError {
    /// Conflicting generators or settings are usage errors (2); a generator that did not come
    /// fails the run (1); a signal is 130.
    pub fn exit(&self) -> crate::Exit {
        use crate::Exit;
        match self {
            RendezvousError::Taken { .. }
            | RendezvousError::Count { .. }
            | RendezvousError::Namespaces { .. }
            | RendezvousError::Connect { .. } => Exit::Usage,
            RendezvousError::Sql(_) | RendezvousError::Timeout { .. } => Exit::Failed,
            RendezvousError::Interrupted => Exit::Interrupted,
        }
    }
}

/// Every generator owns at least one of the data's `namespaces`.
pub fn owns_namespaces(w: &Worker, namespaces: usize) -> Result<(), RendezvousError> {
    if namespaces < w.count {
        return Err(RendezvousError::Namespaces {
            count: w.count,
            namespaces,
        });
    }
    Ok(())
}

fn sql(e: tokio_postgres::Error) -> RendezvousError {
    RendezvousError::Sql(describe_pg_error(&e))
}

/// Registers `worker` and waits for the others and the common start; returns when the load
/// should begin (the start's Unix time, seconds).
pub async fn meet(
    primary: &Target,
    worker: &Worker,
    shutdown: &Shutdown,
) -> Result<f64, RendezvousError> {
    let mut client = primary
        .connect()
        .await
        .map_err(|source| RendezvousError::Connect {
            target: primary.display(),
            source,
        })?;
    register(&mut client, worker).await?;
    eprintln!(
        "{}: registered, waiting for the others (at most {})",
        worker.label(),
        humantime::format_duration(worker.timeout)
    );
    let waited = tokio::select! {
        w = wait(&client, worker) => w,
        _ = shutdown.triggered() => Err(RendezvousError::Interrupted),
    };
    match waited {
        Ok(start) => Ok(start),
        Err(e) => {
            // A run that never started leaves no row behind: a rerun may use the same id.
            let _ = client
                .execute(
                    "DELETE FROM pgvector_loadtest_runs WHERE run_id = $1 AND worker = $2",
                    &[&worker.run_id, &(worker.index as i32)],
                )
                .await;
            Err(e)
        }
    }
}

/// Creates the table if needed and adds this generator's row.
async fn register(client: &mut Client, w: &Worker) -> Result<(), RendezvousError> {
    let tx = client.transaction().await.map_err(sql)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('pgvector_loadtest_runs'))",
        &[],
    )
    .await
    .map_err(sql)?;
    tx.batch_execute(CREATE).await.map_err(sql)?;
    let (index, run_id) = (w.index as i32, &w.run_id);
    let theirs = tx
        .query(
            "SELECT DISTINCT workers FROM pgvector_loadtest_runs WHERE run_id = $1",
            &[run_id],
        )
        .await
        .map_err(sql)?;
    if let Some(row) = theirs.iter().find(|r| r.get::<_, i32>(0) != w.count as i32) {
        return Err(RendezvousError::Count {
            run_id: run_id.clone(),
            theirs: row.get(0),
            ours: w.count,
        });
    }
    let host = hostname();
    let inserted = tx
        .execute(
            "INSERT INTO pgvector_loadtest_runs (run_id, worker, workers, host, pid) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_id, worker) DO NOTHING",
            &[
                run_id,
                &index,
                &(w.count as i32),
                &host,
                &(std::process::id() as i32),
            ],
        )
        .await
        .map_err(sql)?;
    if inserted == 0 {
        let row = tx
            .query_one(
                "SELECT host, pid, registered_at::text FROM pgvector_loadtest_runs \
                 WHERE run_id = $1 AND worker = $2",
                &[run_id, &index],
            )
            .await
            .map_err(sql)?;
        return Err(RendezvousError::Taken {
            index: w.index,
            run_id: run_id.clone(),
            host: row.get(0),
            pid: row.get(1),
            at: row.get(2),
        });
    }
    tx.commit().await.map_err(sql)
}

/// Polls until all N are registered, then sleeps until the common start.
async fn wait(client: &Client, w: &Worker) -> Result<f64, RendezvousError> {
    let deadline = Instant::now() + w.timeout;
    let start_at = w.start_at.map(|t| {
        t.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    });
    loop {
        // Every generator computes the same start from the same rows, on the server's clock:
        // the start, and how far it is from now.
        let row = client
            .query_one(
                "SELECT count(*)::int, coalesce(array_agg(worker ORDER BY worker), '{}'), \
                 extract(epoch FROM max(registered_at))::float8 + $2, \
                 extract(epoch FROM clock_timestamp())::float8 \
                 FROM pgvector_loadtest_runs WHERE run_id = $1",
                &[&w.run_id, &LEAD_S],
            )
            .await
            .map_err(sql)?;
        let arrived: i32 = row.get(0);
        let workers: Vec<i32> = row.get(1);
        if arrived as usize >= w.count {
            let start = start_at.unwrap_or(row.get::<_, f64>(2));
            let now: f64 = row.get(3);
            if start > now {
                tokio::time::sleep(Duration::from_secs_f64(start - now)).await;
            } else if start_at.is_some() {
                log::warn!("--start-at is {:.1} s past: starting now", now - start);
            }
            client
                .execute(
                    "UPDATE pgvector_loadtest_runs SET started_at = clock_timestamp() \
                     WHERE run_id = $1 AND worker = $2",
                    &[&w.run_id, &(w.index as i32)],
                )
                .await
                .map_err(sql)?;
            return Ok(start.max(now));
        }
        if Instant::now() >= deadline {
            let missing: Vec<String> = (0..w.count as i32)
                .filter(|i| !workers.contains(i))
                .map(|i| i.to_string())
                .collect();
            return Err(RendezvousError::Timeout {
                run_id: w.run_id.clone(),
                arrived: arrived as usize,
                count: w.count,
                missing: missing.join(", "),
                timeout: w.timeout,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// This machine's name (a pod's name on Kubernetes), for the registration row.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}
