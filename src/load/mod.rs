//! The Goose load test: pools, users, the history sampler, and the run itself.

pub mod reports;
pub mod scenarios;
pub mod staged;
pub mod status;
pub mod watch;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::cli::ReadFrom;
use crate::config::{Connections, Workload};
use crate::db::pool::{self, Pool};
use crate::db::schema::TableSpec;
use crate::db::target::ConnectError;
use crate::db::Endpoints;
use crate::engine::arrivals::{Pacing, Schedule, ScheduleReport};
use crate::engine::ledger::{Outage, WriteCheck};
use crate::engine::operation::{self, Shared};
use crate::engine::overhead;
use crate::engine::stats::{self, HistorySample, Snapshot, StatsHub};
use crate::events::{
    self, run::EventRecord, visibility, visibility::Probe, visibility::Probing, EventSpec,
};
use crate::shutdown::Shutdown;
use crate::workload::dataset::Dataset;
use crate::Exit;

/// What a finished (or interrupted) load test measured.
pub struct LoadResult {
    /// Our statistics.
    pub snapshot: Snapshot,
    /// Once-a-second samples.
    pub history: Vec<HistorySample>,
    /// Pool usage and recall samples over time, on the history's clock.
    pub timeline: stats::Timeline,
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
    /// The open model: what became of the arrivals.
    pub schedule: Option<ScheduleReport>,
    /// What each maintenance event did, and when.
    pub events: Vec<EventRecord>,
    /// The visibility probes on the replicas.
    pub probes: Vec<Probe>,
    /// Whether every acknowledged write is on the primary after the run.
    pub writes: Option<WriteCheck>,
    /// Stretches of failed writes or reads.
    pub outages: Vec<Outage>,
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

async fn open_pool(
    connections: &Connections,
    vt: crate::workload::Embedding,
    target: &crate::db::target::Target,
) -> Result<Pool, LoadError> {
    let c = connections;
    pool::build(target, &c.session, vt, c.pool_size, c.pool_timeout)
        .await
        .map_err(|source| LoadError::Connect {
            target: target.display(),
            source,
        })
}

/// The sections of the configuration the load test reads.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    /// Pools, session settings, where reads go.
    pub connections: &'a Connections,
    /// Workload knobs.
    pub workload: &'a Workload,
    /// Closed or open model.
    pub pacing: &'a Pacing,
    /// Goose's configuration.
    pub goose: &'a GooseConfiguration,
    /// The status line's interval in a log (None: no status line).
    pub status: Option<Duration>,
    /// (I, N): generator I of N, on its share of the namespaces ((0, 1) alone).
    pub generator: (usize, usize),
    /// Maintenance events to run during the load.
    pub events: &'a [EventSpec],
    /// The table (its index, for the events that rebuild it).
    pub table: &'a TableSpec,
    /// With replicas: how often the visibility probe writes a row (None: no probe).
    pub visibility: Option<Duration>,
    /// The Patroni cluster the failover events act on.
    pub patroni: &'a events::failover::Patroni,
}

/// Runs the Goose load test against `endpoints`.
// Long (about 95 lines): the run in its order — pools and Goose, what runs beside the users,
// the events joined with the attack, then what was measured — each step one call or two.
pub async fn run(
    job: Job<'_>,
    endpoints: &Endpoints,
    dataset: Arc<Dataset>,
    metrics: Option<Arc<crate::metrics::ClientMetrics>>,
    shutdown: &Shutdown,
) -> Result<LoadResult, LoadError> {
    let (connections, pacing, goose) = (job.connections, job.pacing, job.goose);
    // Recall sampled under load (with the exporter's client series), this run's only.
    let recall = metrics.clone();
    if let Some(m) = &recall {
        m.take_recall_mean();
    }
    let shared = share(job, endpoints, dataset, metrics).await?;
    let hub = shared.hub.clone();
    let goose_err = LoadError::Goose;
    let (attack, staged) = attack(goose, &shared, pacing).map_err(goose_err)?;

    let status = job.status.map(|every| {
        let run_time = goose.run_time.as_deref().and_then(run_time);
        status::Status::new(hub.clone(), shared.schedule.clone(), run_time, every)
    });
    let probing = probing(job, endpoints, &shared);
    let beside = Beside::start(&shared, endpoints, connections.pool_size, status, probing);
    let beside_origin = beside.origin;
    let mut events = events_context(job, endpoints, beside_origin, recall.clone());
    events.ledger = Some(shared.ledger.clone());
    if let Some(schedule) = &shared.schedule {
        // A signal ends the schedule too: users waiting for an arrival return.
        let (schedule, signal) = (schedule.clone(), shutdown.token());
        tokio::spawn(async move {
            signal.cancelled().await;
            schedule.close();
        });
    }
    let started = Instant::now();
    let cpu_before = overhead::self_cpu();
    let load_done = CancellationToken::new();
    let attack = async {
        let outcome = attack.execute().await;
        load_done.cancel();
        outcome
    };
    let (outcome, events) = tokio::join!(
        attack,
        events::run::run(job.events, &events, load_done.clone())
    );
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
    let (history, mut server, mut timeline, probes) = beside.stop().await;
    if let Some(m) = &recall {
        server.recall_mean = m.take_recall_mean();
        timeline.recall = m.take_recall_samples(beside_origin);
    }
    server.visibility_p95_ms = visibility::summarize(&probes)
        .iter()
        .map(|r| r.p95_ms)
        .reduce(f64::max);
    // A signal after every user finished only ended the dashboard's idle wait: the run itself
    // completed. (Goose's killswitch is its own process-wide flag, set by our signal handler.)
    let finished_first = match (hub.all_stopped_at(), shutdown.triggered_at()) {
        (Some(done), Some(signal)) => done <= signal,
        _ => false,
    };
    let interrupted = goose::is_killswitch_triggered() && !finished_first;

    let (max_users, thresholds_failed) = goose_outcome(outcome)?;
    let writes = shared.ledger.verify(&endpoints.primary).await;
    let snapshot = hub.snapshot();
    let overhead = overhead::Overhead::measure(
        cpu,
        wall,
        snapshot.aggregated().count(),
        goose.throttle_requests,
        &history,
    );
    Ok(LoadResult {
        snapshot,
        history,
        timeline,
        elapsed,
        max_users,
        thresholds_failed,
        interrupted,
        server,
        overhead,
        schedule: shared.schedule.as_ref().map(|s| s.report()),
        events,
        probes,
        writes: Some(writes),
        outages: shared.ledger.outages(),
    })
}

/// The visibility probe's settings, when the run has replicas and the probe is on.
fn probing(job: Job<'_>, endpoints: &Endpoints, shared: &Shared) -> Option<Probing> {
    let every = job.visibility.filter(|_| !endpoints.replicas.is_empty())?;
    Some(Probing {
        primary: endpoints.primary.clone(),
        replicas: endpoints.replicas.clone(),
        dataset: shared.dataset.clone(),
        embedding: job.workload.embedding,
        origin: Instant::now(),
        every,
    })
}

/// What the events act on; their start and end move the exporter's `event_active` gauge.
fn events_context<'a>(
    job: Job<'a>,
    endpoints: &'a Endpoints,
    origin: Instant,
    metrics: Option<Arc<crate::metrics::ClientMetrics>>,
) -> events::run::Context<'a> {
    let on_change = metrics.map(|m| {
        Arc::new(move |action: &str, on: bool| m.set_event_active(action, on))
            as events::run::OnChange
    });
    events::run::Context {
        endpoints,
        table: job.table,
        origin,
        patroni: job.patroni,
        on_change,
        ledger: None,
    }
}

/// What every user shares: the pools, our statistics, the exporter's observer and the open
/// model's schedule.
async fn share(
    job: Job<'_>,
    endpoints: &Endpoints,
    dataset: Arc<Dataset>,
    metrics: Option<Arc<crate::metrics::ClientMetrics>>,
) -> Result<Arc<Shared>, LoadError> {
    let workload = job.workload;
    let (writer, readers, use_replicas) =
        open_pools(job.connections, workload.embedding, endpoints).await?;
    let schedule = job.pacing.open.as_ref().map(|open| {
        let plan = open.plan.clone();
        Arc::new(Schedule::new(plan, workload.seed, open.max_in_flight))
    });
    if let (Some(m), Some(s)) = (&metrics, &schedule) {
        m.watch_schedule(s.clone());
    }
    let observer = metrics.map(|m| {
        let load = m.for_load(
            workload,
            endpoints,
            use_replicas,
            &dataset,
            &writer,
            &readers,
        );
        load as Arc<dyn operation::Observer>
    });
    Ok(Arc::new(Shared {
        dataset,
        writer,
        readers,
        hub: StatsHub::new(16),
        workload: workload.clone(),
        insert_seq: AtomicU64::new(0),
        run_id: operation::run_id(),
        // Generators draw different query streams.
        stream: job.generator.0 as u64,
        pin_namespace: true,
        generator: job.generator,
        started: Default::default(),
        metrics: observer,
        schedule,
        ledger: Default::default(),
    }))
}

/// The writer's pool and the readers' (the writer's again when reads go to the primary),
/// and whether reads go to replicas.
async fn open_pools(
    connections: &Connections,
    vt: crate::workload::Embedding,
    endpoints: &Endpoints,
) -> Result<(Pool, Vec<Pool>, bool), LoadError> {
    let writer = open_pool(connections, vt, &endpoints.primary).await?;
    let use_replicas = match connections.read_from {
        ReadFrom::Primary => false,
        ReadFrom::Auto | ReadFrom::Replicas => !endpoints.replicas.is_empty(),
    };
    let readers = if use_replicas {
        let mut pools = Vec::new();
        for replica in &endpoints.replicas {
            pools.push(open_pool(connections, vt, replica).await?);
        }
        pools
    } else {
        vec![writer.clone()]
    };
    Ok((writer, readers, use_replicas))
}

/// Goose with our scenarios, its report files staged (moved into place when it ends).
fn attack(
    goose: &GooseConfiguration,
    shared: &Arc<Shared>,
    pacing: &Pacing,
) -> Result<(GooseAttack, staged::Staged), GooseError> {
    let mut goose = goose.clone();
    let staged = staged::Staged::stage(&mut goose.report_file);
    let mut attack = GooseAttack::initialize_with_config(goose)?
        // One shared HTTP client: Goose would otherwise build one per user (~150 MB at 1000).
        .set_client_builder_without_cookies(GooseClientBuilder::new().without_cookies())?;
    for scenario in scenarios::scenarios(shared, pacing)? {
        attack = attack.register_scenario(scenario);
    }
    Ok((attack, staged))
}

/// Most users at once and the thresholds that failed, from what Goose returned.
fn goose_outcome(
    outcome: Result<GooseMetrics, GooseError>,
) -> Result<(usize, Option<String>), LoadError> {
    match outcome {
        Ok(metrics) => Ok((metrics.maximum_users, None)),
        Err(GooseError::ThresholdsFailed { failed, metrics }) => {
            let text = failed
                .iter()
                .map(|r| format!("{} (observed {})", r.rule, r.observed))
                .collect::<Vec<_>>()
                .join("; ");
            Ok((metrics.maximum_users, Some(text)))
        }
        Err(e) => Err(LoadError::Goose(e)),
    }
}

/// Goose's `--run-time` (`10m`, `1h30m`, `90s` or plain seconds).
fn run_time(text: &str) -> Option<Duration> {
    humantime::parse_duration(text)
        .ok()
        .or_else(|| text.parse::<u64>().ok().map(Duration::from_secs))
}

/// What runs beside the users: the once-a-second history sampler and the server watch.
struct Beside {
    stop: CancellationToken,
    // When both started: the history's and the timeline's time 0.
    origin: Instant,
    sampler: tokio::task::JoinHandle<Vec<HistorySample>>,
    watcher: tokio::task::JoinHandle<watch::Watched>,
    probe: Option<tokio::task::JoinHandle<Vec<Probe>>>,
}

impl Beside {
    fn start(
        shared: &Shared,
        endpoints: &Endpoints,
        pool_size: u32,
        mut status: Option<status::Status>,
        probing: Option<Probing>,
    ) -> Beside {
        let stop = CancellationToken::new();
        let origin = Instant::now();
        let probe = probing.map(|mut p| {
            p.origin = origin;
            tokio::spawn(visibility::run(p, stop.clone()))
        });
        let second = Duration::from_secs(1);
        let sampler = stats::sample_history(shared.hub.clone(), second, stop.clone(), move |s| {
            match (s, &mut status) {
                (Some(sample), Some(status)) => status.update(sample),
                (None, Some(status)) => status.finish(),
                _ => {}
            }
        });
        let mut pools = vec![shared.writer.clone()];
        pools.extend(shared.readers.iter().cloned());
        let primary = endpoints.primary.clone();
        let watcher = watch::watch(primary, pools, pool_size, origin, stop.clone());
        Beside {
            stop,
            origin,
            probe,
            sampler: tokio::spawn(sampler),
            watcher: tokio::spawn(watcher),
        }
    }

    async fn stop(
        self,
    ) -> (
        Vec<HistorySample>,
        crate::report::verdict::ServerFigures,
        stats::Timeline,
        Vec<Probe>,
    ) {
        self.stop.cancel();
        let history = self.sampler.await.unwrap_or_default();
        let watched = self.watcher.await.unwrap_or_default();
        let timeline = stats::Timeline {
            pool_usage_pct: watched.pool_usage_pct,
            replication_lag_s: watched.replication_lag_s,
            recall: Vec::new(),
        };
        let server = watched.figures;
        let probes = match self.probe {
            Some(p) => p.await.unwrap_or_default(),
            None => Vec::new(),
        };
        (history, server, timeline, probes)
    }
}
