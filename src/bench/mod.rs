//! The benchmark suite: the spec's four benchmarks, each run as a Goose scenario with a fixed
//! number of users and iterations (`--users 1 --iterations N`; the concurrent one with 120
//! users × 20 iterations, enough for the spec's "> 100 concurrent connections"), after a
//! warm-up run whose statistics are thrown away. Search benchmarks also measure recall@k
//! against exact ground truth ([`recall`]), and `--ef-search` / `--iterative-scan` lists sweep
//! the search benchmarks over index settings; the filtered search is swept over
//! `--filter-selectivity` too.

pub mod html;
mod judge;
mod plan;
pub mod report;

use judge::{judge, truth_recalls};
use plan::{search_k, spec_workload, specs};

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use goose::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::config::{BenchSettings, Connections, Reports, Workload};
use crate::db::pool::{self, Session};
use crate::db::schema::{IndexKind, TableSpec};
use crate::db::target::{describe_pg_error, ConnectError, Target};
use crate::db::Endpoints;
use crate::engine::attack;
use crate::engine::operation::{self, Request, Shared};
use crate::engine::recall;
use crate::engine::stats::StatsHub;
use crate::load::{describe_goose, goose_exit};
use crate::shutdown::Shutdown;
use crate::workload::dataset::Dataset;
use crate::workload::failure::Failure;
use crate::workload::ops::{self, Hit, Op};
use crate::Exit;
use report::{BenchReport, BenchResult, Settings};

/// `application_name` of the ground-truth connections.
const TRUTH_APP: &str = "pgvector-loadtest-truth";

/// Why the suite could not run or complete.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A connection outside the measured operations could not be opened.
    #[error("benchmark {what}: cannot connect to {target}: {source}")]
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
    #[error("benchmark {what}: {}", describe_pg_error(.source))]
    Query {
        /// What it was for.
        what: &'static str,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No connection for a ground-truth query (a failure class: the pool holds no error).
    #[error("benchmark ground truth: {0}")]
    Checkout(Failure),
    /// Goose refused to run, or failed while it ran.
    #[error("goose: {}", describe_goose(.0))]
    Goose(#[source] GooseError),
    /// Results could not be printed or the reports written.
    #[error("writing benchmark reports: {0}")]
    Io(#[from] std::io::Error),
}

impl BenchError {
    /// The exit code. The suite starts once the data is prepared, so the server has answered:
    /// a connection or query failing now means the run could not complete (1), as a report
    /// that cannot be written does; only a configuration Goose refuses is a usage error (2).
    pub fn exit(&self) -> Exit {
        match self {
            BenchError::Goose(e) => goose_exit(e),
            BenchError::Connect { .. }
            | BenchError::Query { .. }
            | BenchError::Checkout(_)
            | BenchError::Io(_) => Exit::Failed,
        }
    }
}

/// One benchmark to run.
#[derive(Debug, Clone)]
struct Spec {
    name: &'static str,
    op: Op,
    users: usize,
    iterations_per_user: usize,
    warmup_per_user: usize,
    ef_search: u32,
    probes: u32,
    iterative_scan: String,
    /// A cross-namespace search over every namespace with the data set's test queries, judged
    /// against the data set's ground truth too.
    whole_table: bool,
    /// The filtered search's share of rows kept.
    filter_selectivity: Option<f64>,
}

/// What every Goose user of one benchmark shares.
struct BenchShared {
    shared: Shared,
    // Searches to judge once the measured run is over, so the ground-truth queries never
    // slow the measured loop (and its wall-clock throughput).
    searched: Mutex<Vec<(Request, Vec<Hit>)>>,
}

/// The sections of the configuration the suite reads.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    /// Which benchmarks, how many iterations, the sweep.
    pub settings: &'a BenchSettings,
    /// Pool timeout and statement timeout (the sweep sets the rest of the session).
    pub connections: &'a Connections,
    /// The table's shape, for the report.
    pub table: &'a TableSpec,
    /// Workload knobs.
    pub workload: &'a Workload,
    /// Report directory and failure gate.
    pub reports: &'a Reports,
}

/// Runs the suite, prints the tables and writes `benchmark_results.json`, `bench_report.html`
/// (and the sweep plot).
pub async fn run(
    job: Job<'_>,
    endpoints: &Endpoints,
    dataset: Arc<Dataset>,
    metrics: Option<Arc<crate::metrics::client::ClientMetrics>>,
    shutdown: &Shutdown,
) -> Result<Exit, BenchError> {
    let (settings, session) = (job.settings, &job.connections.session);
    let primary = &endpoints.primary;
    let versions = versions(primary).await?;
    let specs = specs(settings, session, dataset.test_queries().is_some());
    println!("Vector Search Benchmark Suite");
    println!("{}", "=".repeat(60));
    let mut results = Vec::new();
    for spec in &specs {
        if shutdown.is_triggered() {
            break;
        }
        print_title(job, spec);
        let result = measure(job, primary, dataset.clone(), spec).await?;
        // The exporter's recall gauge shows what the suite measured.
        if let (Some(metrics), Some(recall)) = (&metrics, result.recall_mean) {
            metrics.set_recall(spec.op, recall);
        }
        report::print_result(&mut std::io::stdout(), &result)?;
        results.push(result);
    }
    let mut report = BenchReport::new(
        primary,
        Settings {
            layout: job.table.layout.to_string(),
            dataset: dataset.describe(),
            namespaces: dataset.namespace_count(),
            total_rows: dataset.total_rows(),
            dim: job.table.dim,
            m: job.table.m,
            ef_construction: job.table.ef_construction,
            ef_search: settings.ef_search.clone(),
            vector_type: job.table.vector_type.sql().into(),
            distance: job.table.distance.name().into(),
            index: job.table.index.name().into(),
            lists: (job.table.index == IndexKind::Ivfflat).then_some(job.table.lists),
            probes: match job.table.index {
                IndexKind::Ivfflat => settings.probes.clone(),
                IndexKind::Hnsw => Vec::new(),
            },
            iterative_scan: settings.iterative_scan.clone(),
            filter_selectivity: settings.filter_selectivity.clone(),
            warmup_iterations: settings.warmup,
            server_version: versions.0,
            pgvector_version: versions.1,
        },
        results,
    );
    let reports = job.reports;
    let gate_line = report.judge_failures(&reports.failure_gate);
    report.print_summary(&mut std::io::stdout())?;
    if let Some(line) = gate_line {
        println!("{line}");
    }
    report.write(&reports.dir)?;
    println!(
        "results written to {}",
        reports.dir.join("benchmark_results.json").display()
    );
    Ok(if shutdown.is_triggered() {
        Exit::Interrupted
    } else {
        reports
            .failure_gate
            .exit(&report.failure_gate)
            .unwrap_or(Exit::Success)
    })
}

async fn versions(primary: &Target) -> Result<(String, String), BenchError> {
    let client = primary
        .connect()
        .await
        .map_err(|source| BenchError::Connect {
            what: "setup",
            target: primary.display(),
            source,
        })?;
    crate::db::versions::server(&client)
        .await
        .map_err(|source| BenchError::Query {
            what: "setup",
            source,
        })
}

/// The session a benchmark runs with (its point of the sweep) and a pool with one
/// connection per user and one to spare.
async fn open_pool(
    job: Job<'_>,
    primary: &Target,
    spec: &Spec,
) -> Result<(Session, pool::Pool), BenchError> {
    let session = Session {
        index: job.connections.session.index,
        probes: spec.probes,
        ef_search: spec.ef_search,
        iterative_scan: spec.iterative_scan.clone(),
        statement_timeout: job.connections.session.statement_timeout,
        statement_mode: job.connections.session.statement_mode,
    };
    let size = spec.users as u32 + 1;
    let vt = job.workload.embedding;
    let pool = pool::build(primary, &session, vt, size, job.connections.pool_timeout)
        .await
        .map_err(|source| BenchError::Connect {
            what: "pool",
            target: primary.display(),
            source,
        })?;
    Ok((session, pool))
}

/// The benchmark's title and the point of the sweep it measures.
fn print_title(job: Job<'_>, spec: &Spec) {
    let breadth = match job.connections.session.index {
        IndexKind::Hnsw => format!("ef_search={}", spec.ef_search),
        IndexKind::Ivfflat => format!("probes={}", spec.probes),
    };
    let filter = spec
        .filter_selectivity
        .map(|s| format!(", filter selectivity {}", report::percent(s)))
        .unwrap_or_default();
    println!();
    println!(
        "{} ({breadth}, iterative_scan={}{filter})",
        report::title(spec.name),
        spec.iterative_scan
    );
}

/// Runs one benchmark: warm-up, then the measured run with recall and connection sampling.
async fn measure(
    job: Job<'_>,
    primary: &Target,
    dataset: Arc<Dataset>,
    spec: &Spec,
) -> Result<BenchResult, BenchError> {
    let (session, pool) = open_pool(job, primary, spec).await?;
    let settings = job.settings;
    let workload = spec_workload(job, spec, &dataset);
    // The warm-up and the measured run insert new keys (one run id for both, distinct
    // sequences) and search with different query streams, so the measured run neither rewrites
    // warm-up rows nor replays warm-up queries from a warm cache.
    let run_id = operation::run_id();
    let make = |hub: Arc<StatsHub>, stream: u64| {
        Arc::new(BenchShared {
            shared: Shared {
                dataset: dataset.clone(),
                writer: pool.clone(),
                readers: vec![pool.clone()],
                hub,
                workload: workload.clone(),
                insert_seq: AtomicU64::new(stream << 40),
                run_id: run_id.clone(),
                stream,
                pin_namespace: false,
                generator: (0, 1),
                ledger: Default::default(),
                started: Default::default(),
                metrics: None,
                schedule: None,
            },
            searched: Mutex::new(Vec::new()),
        })
    };

    if spec.warmup_per_user > 0 {
        let warm = make(StatsHub::new(spec.users), 1);
        goose_run(&warm, spec, spec.warmup_per_user).await?;
    }
    let hub = StatsHub::new(spec.users);
    let shared = make(hub.clone(), 2);
    let total = (spec.users * spec.iterations_per_user) as u64;
    let stop = CancellationToken::new();
    let progress = tokio::spawn(report::progress(hub.clone(), spec.op, total, stop.clone()));
    let peak =
        (spec.users > 1).then(|| tokio::spawn(peak_connections(primary.clone(), stop.clone())));
    let outcome = goose_run(&shared, spec, spec.iterations_per_user).await;
    stop.cancel();
    let _ = progress.await;
    let peak = match peak {
        Some(task) => task.await.ok().flatten(),
        None => None,
    };
    outcome?;
    let k = search_k(spec.op, &workload);
    let searched = std::mem::take(&mut *shared.searched.lock().unwrap_or_else(|p| p.into_inner()));
    let (recalls, truth_recalls) = match k {
        Some(k) => {
            let truth = truth_recalls(&dataset, spec, &searched, k);
            (
                judge(primary, &session, searched, k, &workload).await?,
                truth,
            )
        }
        None => (Vec::new(), Vec::new()),
    };
    let mut result = BenchResult::new(
        spec.name,
        spec.users,
        spec.warmup_per_user * spec.users,
        hub.snapshot().op(spec.op),
        hub.active_span(),
        k,
        (spec.ef_search, spec.iterative_scan.clone()),
        &recalls,
        peak,
        (spec.op == Op::BulkInsert).then_some(settings.bulk_rows),
    );
    result.probes = (session.index == IndexKind::Ivfflat).then_some(spec.probes);
    result.dataset_recall_mean = (!truth_recalls.is_empty())
        .then(|| truth_recalls.iter().sum::<f64>() / truth_recalls.len() as f64);
    result.filter_selectivity = spec.filter_selectivity;
    Ok(result)
}

/// One Goose attack: `spec.users` users, each running `iterations` transactions, no think time.
async fn goose_run(b: &Arc<BenchShared>, spec: &Spec, iterations: usize) -> Result<(), BenchError> {
    let mut config = attack::config("pg://benchmark", spec.users);
    config.iterations = Some(iterations);
    let op = spec.op;
    let shared = b.clone();
    let function: TransactionFunction = Arc::new(move |user| {
        let b = shared.clone();
        Box::pin(async move { bench_transaction(user, &b, op).await })
    });
    attack::run(config, spec.name, op.name(), function)
        .await
        .map_err(BenchError::Goose)
}

/// The timed operation; a search is kept to be judged after the run.
async fn bench_transaction(user: &mut GooseUser, b: &BenchShared, op: Op) -> TransactionResult {
    let (request, hits) = operation::perform(user, &b.shared, op, None).await?;
    if op.is_search() {
        if let Ok(mut searched) = b.searched.lock() {
            searched.push((request, hits));
        }
    }
    Ok(())
}

/// Samples the server's connections of the measured pool every 20 ms until `stop`; returns the
/// peak. The ground-truth pool and this sampler use other application names and are not counted.
async fn peak_connections(target: Target, stop: CancellationToken) -> Option<i64> {
    let client = target
        .with_application_name("pgvector-loadtest-monitor")
        .connect()
        .await
        .ok()?;
    let mut peak = 0i64;
    loop {
        if let Ok(row) = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE backend_type = 'client backend' AND application_name = 'pgvector-loadtest'",
                &[],
            )
            .await
        {
            peak = peak.max(row.get(0));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = stop.cancelled() => return Some(peak),
        }
    }
}
