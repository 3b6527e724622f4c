//! The validated configuration: built once from the raw CLI, checked before any server is
//! started or any load is sent, and the only thing the rest of the program reads.

use std::path::PathBuf;
use std::time::Duration;

use goose::config::GooseConfiguration;

use crate::cli::{Cli, Command, IterativeScan, ReadFrom};
use crate::db::pool::Session;
use crate::db::schema::{Layout, TableSpec};
use crate::db::target::Target;
use crate::engine::arrivals::Pacing;
use crate::workload::dataset::{DatasetSpec, BUCKETS};
use crate::workload::ops::bucket_threshold;

/// A usage or configuration error: exit code 2, one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn bad(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// What the run does.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// The Goose load test.
    Load,
    /// Schema and seed only.
    Setup,
    /// The benchmark suite.
    Bench(BenchSettings),
    /// The Prometheus exporter alone, until Ctrl-C.
    Metrics,
    /// pgbench against our Goose users on the same SQL.
    Calibrate(CalibrateSettings),
    /// Delete the rows load tests inserted.
    Cleanup,
    /// The highest load at which every objective holds.
    Capacity(CapacitySettings),
}

mod compare;
mod events;
mod goose_settings;
mod modes;
mod pacing;
mod worker;
pub use worker::{Worker, INDEX_VARIABLE};

pub use crate::db::Embedded;
pub use compare::{compare_settings, CompareSettings, Markdown};
use goose_settings::goose_settings;
use modes::{bench_settings, capacity_settings, metrics_settings};
pub use modes::{
    calibrate_settings, BenchSettings, CalibrateSettings, CapacitySettings, MetricsSettings,
    DEFAULT_METRICS_PORT,
};
use pacing::{capacity_pacing, pacing, Explicit};

pub use crate::workload::Workload;

/// Everything a run needs, validated, in sections: each mode receives only the sections it
/// reads.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to do.
    pub mode: Mode,
    /// Where the database is.
    pub servers: Servers,
    /// How the harness connects to it.
    pub connections: Connections,
    /// The table, its index and the data seeded into it.
    pub data: Data,
    /// Workload knobs.
    pub workload: Workload,
    /// Closed model (think times) or open model (arrival schedule).
    pub pacing: Pacing,
    /// Goose's configuration, with a credential-free host and our report files.
    pub goose: GooseConfiguration,
    /// Where reports go and what judges the run.
    pub reports: Reports,
    /// The Prometheus exporter.
    pub metrics: MetricsSettings,
    /// One of several generators (`--worker I/N`).
    pub worker: Option<Worker>,
    /// Maintenance events during the load test, in time order.
    pub events: Vec<crate::events::EventSpec>,
    /// With replicas: the visibility probe's interval (None: off).
    pub visibility: Option<std::time::Duration>,
    /// The Patroni cluster the failover events act on.
    pub patroni: crate::events::failover::Patroni,
}

/// Where the database is.
#[derive(Debug, Clone)]
pub struct Servers {
    /// The primary (None: embedded).
    pub primary: Option<Target>,
    /// Read endpoints.
    pub replicas: Vec<Target>,
    /// Embedded server settings.
    pub embedded: Embedded,
}

/// How the harness connects: its pools and the session settings of every connection.
#[derive(Debug, Clone)]
pub struct Connections {
    /// Where reads go.
    pub read_from: ReadFrom,
    /// Pool size per endpoint.
    pub pool_size: u32,
    /// Pool checkout timeout.
    pub pool_timeout: Duration,
    /// `hnsw.ef_search`, `hnsw.iterative_scan`, `statement_timeout` (for `bench`, the first
    /// point of its sweep).
    pub session: Session,
}

/// The table, its index and the data seeded into it.
#[derive(Debug, Clone)]
pub struct Data {
    /// Table shape and index.
    pub table: TableSpec,
    /// The synthetic dataset (or the namespace count for a file).
    pub dataset: DatasetSpec,
    /// Real vectors.
    pub vectors_file: Option<PathBuf>,
    /// Their queries, ground truth and distance.
    pub files: crate::workload::dataset::FileOptions,
    /// Drop and recreate our table.
    pub reset: bool,
}

/// Where reports go and what judges the run.
#[derive(Debug, Clone)]
pub struct Reports {
    /// Report directory (checked writable).
    pub dir: PathBuf,
    /// The load profile whose objectives judge the run.
    pub profile: Option<crate::profile::Profile>,
    /// When failed operations fail the run.
    pub failure_gate: crate::report::gate::FailureGate,
    /// How often the load test's status line is printed to a log.
    pub status_interval: std::time::Duration,
}

impl Config {
    /// Validates the raw command line.
    // Long (about 115 lines): half of it is the one struct literal that names every section;
    // the checks themselves live in the helpers below.
    pub fn from_cli(mut cli: Cli) -> Result<Config, ConfigError> {
        let mut goose = std::mem::take(&mut cli.goose);
        let database_url = cli.db.database_url.take();
        let (primary, replicas) = endpoints(database_url, &mut goose, &cli.db)?;
        if cli.db.pool_size == 0 {
            return Err(bad("--pool-size must be at least 1"));
        }
        if cli.db.pool_timeout.is_zero() {
            return Err(bad("--pool-timeout must be greater than zero"));
        }
        let statement_timeout = cli.db.statement_timeout.map(whole_millis).transpose()?;
        let failure_gate = failure_gate(&cli)?;

        let is_bench = matches!(cli.command, Some(Command::Bench(_)));
        let (layout, iterative_scans) = index_and_data(&cli.data, is_bench)?;
        let distance = distance(&cli.data)?;
        let embedding = crate::workload::Embedding {
            vector_type: cli.data.vector_type,
            distance,
        };
        let selectivities = filter_selectivities(&cli.workload.filter_selectivity, is_bench)?;
        let mut workload = workload(&cli.workload, cli.data.seed, embedding)?;
        workload.filter_threshold = bucket_threshold(selectivities[0]);

        let explicit = Explicit {
            users: goose.users,
            run_time: goose.run_time.clone(),
            hatch_rate: cli.hatch_rate.is_some() || goose.increase_rate.is_some(),
        };
        let (mut goose, mut profile) = goose_settings(goose, &cli, primary.as_ref())?;
        let mut pacing = match &cli.command {
            Some(Command::Capacity(_)) => capacity_pacing(&cli.pacing, &mut profile)?,
            command => {
                let is_load = command.is_none();
                pacing(
                    &cli.pacing,
                    &mut goose,
                    &explicit,
                    profile.as_ref(),
                    is_load,
                )?
            }
        };
        let worker = worker::worker(&cli, &mut goose, &mut pacing, primary.is_some())?;
        let events = events::events(&cli, profile.as_ref(), &goose, worker.as_ref())?;
        let visibility = Some(cli.events.visibility_interval).filter(|d| !d.is_zero());

        let mode = match cli.command {
            None => Mode::Load,
            Some(Command::Setup) => Mode::Setup,
            Some(Command::Bench(args)) => Mode::Bench(bench_settings(
                args,
                cli.data.ef_search.clone(),
                cli.data.probes.clone(),
                iterative_scans.clone(),
                selectivities,
            )?),
            Some(Command::Metrics) => Mode::Metrics,
            Some(Command::Cleanup) => Mode::Cleanup,
            Some(Command::Calibrate(a)) => Mode::Calibrate(calibrate_settings(&a).map_err(bad)?),
            Some(Command::Capacity(a)) => {
                Mode::Capacity(capacity_settings(&a, &cli.pacing, explicit.users)?)
            }
            // `compare` and `merge` read files: lib::run takes them elsewhere first.
            Some(Command::Compare(_)) => {
                return Err(bad("`compare` reads two summaries and runs nothing"))
            }
            Some(Command::Merge(_)) => return Err(bad("`merge` reads reports and runs nothing")),
        };
        let metrics = metrics_settings(&cli.metrics, &mode)?;
        Ok(Config {
            mode,
            servers: Servers {
                primary,
                replicas,
                embedded: Embedded {
                    replicas: cli.db.embedded_replicas,
                    wipe: cli.db.wipe,
                    pg_bin: cli.db.pg_bin,
                },
            },
            connections: Connections {
                read_from: cli.db.read_from,
                pool_size: cli.db.pool_size,
                pool_timeout: cli.db.pool_timeout,
                session: Session {
                    index: cli.data.index,
                    probes: cli.data.probes[0],
                    ef_search: cli.data.ef_search[0],
                    iterative_scan: iterative_scans[0].clone(),
                    statement_timeout,
                    statement_mode: cli.db.statement_mode,
                },
            },
            data: Data {
                table: TableSpec {
                    layout,
                    dim: cli.data.dim,
                    m: cli.data.m,
                    ef_construction: cli.data.ef_construction,
                    vector_type: cli.data.vector_type,
                    distance,
                    index: cli.data.index,
                    lists: cli.data.lists,
                },
                dataset: DatasetSpec {
                    namespaces: cli.data.namespaces,
                    rows_per_namespace: cli.data.rows_per_namespace,
                    dim: cli.data.dim,
                    seed: cli.data.seed,
                    topics: cli.data.topics,
                    subtopics: cli.data.subtopics,
                    subtopic_spread: cli.data.subtopic_spread,
                    noise: cli.data.noise,
                    anisotropy: cli.data.anisotropy,
                    hubness: cli.data.hubness,
                    skew: cli.data.namespace_skew,
                },
                files: crate::workload::dataset::FileOptions {
                    queries: cli.data.queries_file.clone(),
                    ground_truth: cli.data.ground_truth.clone(),
                    distance,
                },
                vectors_file: cli.data.vectors_file,
                reset: cli.data.reset,
            },
            workload,
            pacing,
            goose,
            reports: Reports {
                dir: cli.report_dir,
                profile,
                failure_gate,
                status_interval: cli.status_interval,
            },
            metrics,
            worker,
            events,
            visibility,
            patroni: crate::events::failover::Patroni {
                urls: cli.events.patroni_url.clone(),
                local_cluster: cli.events.local_cluster.clone(),
            },
        })
    }
}

/// `merge`'s directories and where (and by what) the merged run is reported, when the command
/// line is `merge` (None otherwise): it reads files only, so no server is checked.
pub fn merge_settings(cli: &Cli) -> Option<Result<(Vec<PathBuf>, Reports), ConfigError>> {
    let Some(Command::Merge(args)) = &cli.command else {
        return None;
    };
    let reports = || -> Result<Reports, ConfigError> {
        goose_settings::ensure_writable(&cli.report_dir)?;
        Ok(Reports {
            dir: cli.report_dir.clone(),
            profile: profile(cli)?,
            failure_gate: failure_gate(cli)?,
            status_interval: cli.status_interval,
        })
    };
    Some(reports().map(|r| (args.dirs.clone(), r)))
}

/// `--max-failure-share` and `--exit-code-on-error`.
fn failure_gate(cli: &Cli) -> Result<crate::report::gate::FailureGate, ConfigError> {
    if !(0.0..=1.0).contains(&cli.max_failure_share) {
        return Err(bad(format!(
            "--max-failure-share must be between 0 and 1 (0.01 = 1 %), got {}",
            cli.max_failure_share
        )));
    }
    Ok(crate::report::gate::FailureGate {
        max_share: cli.max_failure_share,
        exit_code: cli.exit_code_on_error,
    })
}

/// The profile `--profile` (built in) or `--profile-file` names, if any.
fn profile(cli: &Cli) -> Result<Option<crate::profile::Profile>, ConfigError> {
    match (&cli.profile, &cli.profile_file) {
        (Some(name), _) => Some(crate::profile::built_in(name)),
        (None, Some(path)) => Some(crate::profile::from_file(path)),
        (None, None) => None,
    }
    .transpose()
    .map_err(|e| bad(e.to_string()))
}

/// The primary and the replicas: `--database-url` (or a postgres:// `--host`, as Locust and
/// Goose users type it) and `--replica-url`, parsed and checked against each other.
fn endpoints(
    mut database_url: Option<String>,
    goose: &mut GooseConfiguration,
    db: &crate::cli::DbArgs,
) -> Result<(Option<Target>, Vec<Target>), ConfigError> {
    // Locust and Goose users type --host: a PostgreSQL URL there is the database.
    if let Some(host) = goose.host.take() {
        if host.starts_with("postgres://") || host.starts_with("postgresql://") {
            if database_url.is_none() {
                database_url = Some(host);
            }
        } else if !host.starts_with("pg://") {
            return Err(bad(format!(
                "--host must be a postgres:// URL (it is taken as --database-url), got a {} URL",
                host.split("://").next().unwrap_or("non")
            )));
        }
    }
    let database = database_url
        .as_deref()
        .map(Target::parse)
        .transpose()
        .map_err(|e| bad(e.to_string()))?;
    let replicas = db
        .replica_url
        .iter()
        .map(|u| Target::parse(u).map_err(|e| bad(format!("--replica-url: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if db.read_from == ReadFrom::Replicas && replicas.is_empty() && db.embedded_replicas == 0 {
        return Err(bad(
            "--read-from replicas needs --replica-url or --embedded-replicas",
        ));
    }
    if database.is_some() && db.embedded_replicas > 0 {
        return Err(bad(
            "--embedded-replicas only applies to the embedded server (no --database-url)",
        ));
    }
    Ok((database, replicas))
}

/// The layout, the index settings (lists only for a `bench` sweep) and the dataset's shape,
/// checked; returns the layout and the iterative-scan modes (the first is the run's).
fn index_and_data(
    data: &crate::cli::DataArgs,
    is_bench: bool,
) -> Result<(Layout, Vec<String>), ConfigError> {
    let layout: Layout = data.layout.parse().map_err(bad)?;
    let mut iterative_scans: Vec<String> = data
        .iterative_scan
        .iter()
        .map(|mode| mode.as_str().to_string())
        .collect();
    if iterative_scans.is_empty() {
        iterative_scans.push(if matches!(layout, Layout::Hash(_)) {
            IterativeScan::RelaxedOrder.as_str().into()
        } else {
            IterativeScan::Off.as_str().into()
        });
    }
    if !is_bench && (iterative_scans.len() > 1 || data.ef_search.len() > 1 || data.probes.len() > 1)
    {
        return Err(bad(
            "lists of --ef-search / --probes / --iterative-scan values are only for `bench` (a \
             sweep)",
        ));
    }
    check_ivfflat(data, &iterative_scans)?;
    if data.m < 2 || data.m > 100 {
        return Err(bad("--m must be between 2 and 100 (pgvector's limits)"));
    }
    if data.ef_construction < 2 * data.m || data.ef_construction > 1000 {
        return Err(bad(
            "--ef-construction must be at least 2 x m and at most 1000",
        ));
    }
    if data.ef_search.is_empty() || data.ef_search.iter().any(|&e| e == 0 || e > 1000) {
        return Err(bad("--ef-search must be between 1 and 1000"));
    }
    if data.namespaces == 0 || data.rows_per_namespace == 0 {
        return Err(bad(
            "--namespaces and --rows-per-namespace must be at least 1",
        ));
    }
    if data.dim == 0 || data.dim > 2000 {
        return Err(bad(
            "--dim must be between 1 and 2000 (HNSW's limit for vector)",
        ));
    }
    if !(data.namespace_skew >= 0.0 && data.namespace_skew <= 10.0) {
        return Err(bad("--namespace-skew must be between 0 and 10"));
    }
    if let Some(path) = &data.vectors_file {
        if !path.exists() {
            return Err(bad(format!(
                "--vectors-file {}: no such file or directory",
                path.display()
            )));
        }
    }

    Ok((layout, iterative_scans))
}

/// IVFFlat's settings: lists and probes in pgvector's ranges, probes no more than lists, and
/// no `strict_order` (IVFFlat's iterative scan has only `relaxed_order`).
fn check_ivfflat(
    data: &crate::cli::DataArgs,
    iterative_scans: &[String],
) -> Result<(), ConfigError> {
    if data.lists == 0 || data.lists > 32_768 {
        return Err(bad(
            "--lists must be between 1 and 32768 (pgvector's limits)",
        ));
    }
    if data.probes.is_empty() || data.probes.iter().any(|&p| p == 0 || p > data.lists) {
        return Err(bad(format!(
            "--probes must be between 1 and --lists ({})",
            data.lists
        )));
    }
    if data.index == crate::db::schema::IndexKind::Ivfflat
        && iterative_scans.iter().any(|m| m == "strict_order")
    {
        return Err(bad(
            "--iterative-scan strict_order is HNSW's only: IVFFlat has off and relaxed_order",
        ));
    }
    Ok(())
}

/// The distance: `--distance`, else what a data set file declares (ann-benchmarks' `distance`
/// attribute), else cosine. A file whose declared distance differs from `--distance` is an
/// error: its ground truth would mean nothing.
fn distance(data: &crate::cli::DataArgs) -> Result<crate::workload::Distance, ConfigError> {
    use crate::workload::dataset::{FileSet, Metric};
    use crate::workload::Distance;
    let declared = match &data.vectors_file {
        Some(path) => FileSet::open(
            path,
            data.queries_file.as_deref(),
            data.ground_truth.as_deref(),
        )
        .map_err(|e| bad(e.to_string()))?
        .metric()
        .map(|m| match m {
            Metric::Cosine => Distance::Cosine,
            Metric::L2 => Distance::L2,
            Metric::InnerProduct => Distance::Ip,
        }),
        None => None,
    };
    match (data.distance, declared) {
        (Some(given), Some(file)) if given != file => Err(bad(format!(
            "--distance {} but the data set's ground truth was computed with {}",
            given.name(),
            file.name()
        ))),
        (given, file) => Ok(given.or(file).unwrap_or_default()),
    }
}

/// The workload's knobs, checked.
fn workload(
    w: &crate::cli::WorkloadArgs,
    seed: u64,
    embedding: crate::workload::Embedding,
) -> Result<Workload, ConfigError> {
    if w.k == 0 || w.cross_k == 0 || w.k > 1000 || w.cross_k > 1000 {
        return Err(bad("--k and --cross-k must be between 1 and 1000"));
    }
    if w.cross_namespaces == 0 {
        return Err(bad("--cross-namespaces must be at least 1"));
    }
    if let Some(s) = w.min_similarity {
        if !(-1.0..=1.0).contains(&s) {
            return Err(bad("--min-similarity must be between -1 and 1"));
        }
    }
    if !(0.0..=1.0).contains(&w.retrieve_hit_ratio) {
        return Err(bad("--retrieve-hit-ratio must be between 0 and 1"));
    }
    if w.bulk_batch == 0 || w.bulk_batch > 10_000 {
        return Err(bad("--bulk-batch must be between 1 and 10000"));
    }
    if !(0.0..1.0).contains(&w.bulk_user_share) {
        return Err(bad("--bulk-user-share must be at least 0 and below 1"));
    }
    // Goose repeats a transaction as many times as its weight in every user's list.
    if w.filtered_weight > 1000 {
        return Err(bad("--filtered-weight must be between 0 and 1000"));
    }

    Ok(Workload {
        k: w.k,
        cross_k: w.cross_k,
        cross_namespaces: w.cross_namespaces,
        min_similarity: w.min_similarity,
        // Set by the caller from the checked --filter-selectivity.
        filter_threshold: 0,
        filtered_weight: w.filtered_weight,
        retrieve_hit_ratio: w.retrieve_hit_ratio,
        bulk_batch: w.bulk_batch,
        bulk_user_share: w.bulk_user_share,
        seed,
        embedding,
    })
}

/// The `--filter-selectivity` values, checked: each above 0 and at most 1, and wide enough to
/// keep at least one bucket of [`BUCKETS`] (a threshold of 0 would keep no row); a list only
/// for `bench`.
fn filter_selectivities(values: &[f64], is_bench: bool) -> Result<Vec<f64>, ConfigError> {
    if values.is_empty() {
        return Err(bad("--filter-selectivity needs a value"));
    }
    if !is_bench && values.len() > 1 {
        return Err(bad(
            "a list of --filter-selectivity values is only for `bench` (a sweep)",
        ));
    }
    for &s in values {
        if !(s > 0.0 && s <= 1.0) {
            return Err(bad(format!(
                "--filter-selectivity must be above 0 and at most 1 (0.01 keeps 1 % of the \
                 seeded rows), got {s}"
            )));
        }
        if bucket_threshold(s) == 0 {
            return Err(bad(format!(
                "--filter-selectivity {s} keeps no row: rows fall in {BUCKETS} buckets, so the \
                 smallest selectivity is {}",
                1.0 / f64::from(BUCKETS)
            )));
        }
    }
    Ok(values.to_vec())
}

/// PostgreSQL's `statement_timeout` counts whole milliseconds and 0 turns it off, so a value
/// under 1 ms would silently mean "no timeout": refuse it, and round the rest to whole
/// milliseconds here, once, rather than let each `SET` truncate.
fn whole_millis(timeout: Duration) -> Result<Duration, ConfigError> {
    if timeout < Duration::from_millis(1) {
        return Err(bad(format!(
            "--statement-timeout must be at least 1ms (PostgreSQL counts whole milliseconds \
             and 0 disables it), got {}",
            humantime::format_duration(timeout)
        )));
    }
    Ok(Duration::from_millis(
        (timeout.as_secs_f64() * 1000.0).round() as u64,
    ))
}
