//! The Goose load test: pools, users, the history sampler, and the run itself.

pub mod scenarios;
pub mod staged;
pub mod watch;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::client::GooseClientBuilder;
use goose::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::cli::ReadFrom;
use crate::config::Config;
use crate::db::pool::{self, Pool, Session};
use crate::db::target::ConnectError;
use crate::db::Endpoints;
use crate::engine::operation::{self, Shared};
use crate::engine::overhead;
use crate::engine::stats::{self, HistorySample, Snapshot, StatsHub};
use crate::shutdown::Shutdown;
use crate::workload::dataset::Dataset;
use crate::Exit;

/// What a finished (or interrupted) load test measured.
pub struct LoadResult {
    /// Our statistics.
    pub snapshot: Snapshot,
    /// Once-a-second samples.
    pub history: Vec<HistorySample>,
    /// Wall-clock time of the load phase: first operation's start to last one's end.
    pub elapsed: Duration,
    /// Most users at once (from Goose).
    pub max_users: usize,
    /// A Goose `--threshold` failed.
    pub thresholds_failed: Option<String>,
    /// Goose was stopped by the killswitch (a signal).
    pub interrupted: bool,
    /// Cache hit ratio, replication lag and pool usage over the run.
    pub server: crate::report::verdict::ServerFigures,
    /// The harness's own CPU use and, when throttled, schedule lag.
    pub overhead: overhead::Overhead,
}

/// Why the load test could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A pool could not be opened.
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// Endpoint, without credentials.
        target: String,
        /// Cause.
        #[source]
        source: ConnectError,
    },
    /// Goose refused its configuration, or failed while it ran.
    #[error("goose: {}", describe_goose(.0))]
    Goose(#[source] GooseError),
}

impl LoadError {
    /// The exit code. The pools open after every endpoint answered and the data was checked:
    /// a connection refused now means the server went away during the run (1).
    pub fn exit(&self) -> Exit {
        match self {
            LoadError::Connect { .. } => Exit::Failed,
            LoadError::Goose(e) => goose_exit(e),
        }
    }
}

/// The exit code of a Goose error: a configuration Goose refuses is a usage error, nothing
/// having run (2); an I/O or task error comes from a run that started (1).
pub fn goose_exit(e: &GooseError) -> Exit {
    match e {
        GooseError::Io(_)
        | GooseError::Reqwest(_)
        | GooseError::TokioJoin(_)
        | GooseError::Serde(_) => Exit::Failed,
        GooseError::ThresholdsFailed { .. } => Exit::SloBreached,
        _ => Exit::Usage,
    }
}

/// One line for a Goose error; Goose's own text leaves out which option it refused.
pub fn describe_goose(e: &GooseError) -> String {
    let text = match e {
        GooseError::InvalidOption {
            option,
            value,
            detail,
        } => format!("invalid {option} '{value}': {detail}"),
        other => other.to_string(),
    };
    text.replace('\n', " ")
}

/// Session settings every pooled connection gets.
pub fn session(config: &Config) -> Session {
    Session {
        ef_search: config.ef_search,
        iterative_scan: config.iterative_scan.clone(),
        statement_timeout: config.statement_timeout,
    }
}

async fn open_pool(config: &Config, target: &crate::db::target::Target) -> Result<Pool, LoadError> {
    pool::build(
        target,
        &session(config),
        config.pool_size,
        config.pool_timeout,
    )
    .await
    .map_err(|source| LoadError::Connect {
        target: target.display(),
        source,
    })
}

/// Runs the Goose load test against `endpoints`.
pub async fn run(
    config: &Config,
    endpoints: &Endpoints,
    dataset: Arc<Dataset>,
    metrics: Option<Arc<crate::metrics::ClientMetrics>>,
    shutdown: &Shutdown,
) -> Result<LoadResult, LoadError> {
    let writer = open_pool(config, &endpoints.primary).await?;
    let use_replicas = match config.read_from {
        ReadFrom::Primary => false,
        ReadFrom::Auto | ReadFrom::Replicas => !endpoints.replicas.is_empty(),
    };
    let readers = if use_replicas {
        let mut pools = Vec::new();
        for replica in &endpoints.replicas {
            pools.push(open_pool(config, replica).await?);
        }
        pools
    } else {
        vec![writer.clone()]
    };
    let hub = StatsHub::new(16);
    let metrics =
        metrics.map(|m| m.for_load(config, endpoints, use_replicas, &dataset, &writer, &readers));
    let shared = Arc::new(Shared {
        dataset,
        writer,
        readers,
        hub: hub.clone(),
        workload: config.workload.clone(),
        insert_seq: AtomicU64::new(0),
        run_id: operation::run_id(),
        stream: 0,
        pin_namespace: true,
        started: Default::default(),
        metrics: metrics.map(|m| m as Arc<dyn operation::Observer>),
    });

    let goose_err = LoadError::Goose;
    let mut goose = config.goose.clone();
    let staged = staged::Staged::stage(&mut goose.report_file);
    let mut attack = GooseAttack::initialize_with_config(goose)
        .map_err(goose_err)?
        // One shared HTTP client: Goose would otherwise build one per user (~150 MB at 1000).
        .set_client_builder_without_cookies(GooseClientBuilder::new().without_cookies())
        .map_err(goose_err)?;
    for scenario in scenarios::scenarios(&shared).map_err(goose_err)? {
        attack = attack.register_scenario(scenario);
    }

    let stop_sampler = CancellationToken::new();
    let sampler = tokio::spawn(stats::sample_history(
        hub.clone(),
        Duration::from_secs(1),
        stop_sampler.clone(),
    ));
    let mut pools = vec![shared.writer.clone()];
    pools.extend(shared.readers.iter().cloned());
    let watcher = tokio::spawn(watch::watch(
        endpoints.primary.clone(),
        pools,
        config.pool_size,
        stop_sampler.clone(),
    ));
    let started = Instant::now();
    let cpu_before = overhead::self_cpu();
    let outcome = attack.execute().await;
    let cpu = overhead::self_cpu().saturating_sub(cpu_before);
    let wall = started.elapsed();
    if let Err(e) = staged.commit() {
        log::warn!("moving Goose's reports into place: {e}");
    }
    // Rates are per second of the load phase (first operation's start to last one's end),
    // not of execute(), which also holds Goose's start-up, its report writing and, with
    // --dashboard, the wait for Ctrl-C.
    let span = hub.active_span();
    let elapsed = if span.is_zero() { wall } else { span };
    stop_sampler.cancel();
    let history = sampler.await.unwrap_or_default();
    let server = watcher.await.unwrap_or_default();
    // A signal after every user finished only ended the dashboard's idle wait: the run itself
    // completed.
    let finished_first = match (hub.all_stopped_at(), shutdown.triggered_at()) {
        (Some(done), Some(signal)) => done <= signal,
        _ => false,
    };
    let interrupted = goose::is_killswitch_triggered() && !finished_first;

    let (max_users, thresholds_failed) = match outcome {
        Ok(metrics) => (metrics.maximum_users, None),
        Err(GooseError::ThresholdsFailed { failed, metrics }) => {
            let text = failed
                .iter()
                .map(|r| format!("{} (observed {})", r.rule, r.observed))
                .collect::<Vec<_>>()
                .join("; ");
            (metrics.maximum_users, Some(text))
        }
        Err(e) => return Err(goose_err(e)),
    };
    let snapshot = hub.snapshot();
    let overhead = overhead::Overhead::measure(
        cpu,
        wall,
        snapshot.aggregated().count(),
        config.goose.throttle_requests,
        &history,
    );
    Ok(LoadResult {
        snapshot,
        history,
        elapsed,
        max_users,
        thresholds_failed,
        interrupted,
        server,
        overhead,
    })
}
