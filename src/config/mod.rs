//! The validated configuration: built once from the raw CLI, checked before any server is
//! started or any load is sent, and the only thing the rest of the program reads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use goose::config::GooseConfiguration;

use crate::cli::{Cli, Command, IterativeScan, ReadFrom};
use crate::db::pool::Session;
use crate::db::schema::{Layout, TableSpec};
use crate::db::target::Target;
use crate::engine::arrivals::{parse_stages, parse_think_time, Open, Pacing, Plan};
use crate::workload::dataset::DatasetSpec;

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

mod modes;

pub use crate::db::Embedded;
use modes::{bench_settings, capacity_settings, metrics_settings};
pub use modes::{
    calibrate_settings, BenchSettings, CalibrateSettings, CapacitySettings, MetricsSettings,
    DEFAULT_METRICS_PORT,
};

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
}

impl Config {
    /// Validates the raw command line.
    // Long (about 110 lines): half of it is the one struct literal that names every section;
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
        if !(0.0..=1.0).contains(&cli.max_failure_share) {
            return Err(bad(format!(
                "--max-failure-share must be between 0 and 1 (0.01 = 1 %), got {}",
                cli.max_failure_share
            )));
        }
        let failure_gate = crate::report::gate::FailureGate {
            max_share: cli.max_failure_share,
            exit_code: cli.exit_code_on_error,
        };

        let is_bench = matches!(cli.command, Some(Command::Bench(_)));
        let (layout, iterative_scans) = index_and_data(&cli.data, is_bench)?;
        let workload = workload(&cli.workload, cli.data.seed, cli.data.vector_type)?;

        let explicit = Explicit {
            users: goose.users,
            run_time: goose.run_time.clone(),
            hatch_rate: cli.hatch_rate.is_some() || goose.increase_rate.is_some(),
        };
        let (mut goose, mut profile) = goose_settings(goose, &cli, primary.as_ref())?;
        let pacing = match &cli.command {
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

        let mode = match cli.command {
            None => Mode::Load,
            Some(Command::Setup) => Mode::Setup,
            Some(Command::Bench(args)) => Mode::Bench(bench_settings(
                args,
                cli.data.ef_search.clone(),
                cli.data.probes.clone(),
                iterative_scans.clone(),
            )?),
            Some(Command::Metrics) => Mode::Metrics,
            Some(Command::Cleanup) => Mode::Cleanup,
            Some(Command::Calibrate(a)) => Mode::Calibrate(calibrate_settings(&a).map_err(bad)?),
            Some(Command::Capacity(a)) => {
                Mode::Capacity(capacity_settings(&a, &cli.pacing, explicit.users)?)
            }
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
                },
            },
            data: Data {
                table: TableSpec {
                    layout,
                    dim: cli.data.dim,
                    m: cli.data.m,
                    ef_construction: cli.data.ef_construction,
                    vector_type: cli.data.vector_type,
                    index: cli.data.index,
                    lists: cli.data.lists,
                },
                dataset: DatasetSpec {
                    namespaces: cli.data.namespaces,
                    rows_per_namespace: cli.data.rows_per_namespace,
                    dim: cli.data.dim,
                    seed: cli.data.seed,
                    topics_per_namespace: cli.data.topics.max(1),
                    skew: cli.data.namespace_skew,
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
            },
            metrics,
        })
    }
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
        if !path.is_file() {
            return Err(bad(format!(
                "--vectors-file {}: no such file",
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

/// The workload's knobs, checked.
fn workload(
    w: &crate::cli::WorkloadArgs,
    seed: u64,
    vector_type: crate::workload::VectorType,
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

    Ok(Workload {
        k: w.k,
        cross_k: w.cross_k,
        cross_namespaces: w.cross_namespaces,
        min_similarity: w.min_similarity,
        retrieve_hit_ratio: w.retrieve_hit_ratio,
        bulk_batch: w.bulk_batch,
        bulk_user_share: w.bulk_user_share,
        seed,
        vector_type,
    })
}

/// Goose's configuration: the profile's users, rate and run time unless given, our report
/// files, a credential-free host; and the profile itself.
fn goose_settings(
    mut goose: GooseConfiguration,
    cli: &Cli,
    database: Option<&Target>,
) -> Result<(GooseConfiguration, Option<crate::profile::Profile>), ConfigError> {
    if let Some(rate) = cli.hatch_rate.clone() {
        if goose.increase_rate.is_some() {
            return Err(bad("give --hatch-rate or --increase-rate, not both"));
        }
        goose.increase_rate = Some(rate);
    }
    let profile = match (&cli.profile, &cli.profile_file) {
        (Some(name), _) => Some(crate::profile::built_in(name)),
        (None, Some(path)) => Some(crate::profile::from_file(path)),
        (None, None) => None,
    }
    .transpose()
    .map_err(|e| bad(e.to_string()))?;
    if let Some(p) = &profile {
        // Flags given explicitly win over the profile.
        goose.users = goose.users.or(p.users);
        goose.increase_rate = goose
            .increase_rate
            .take()
            .or(p.hatch_rate.map(|r| r.to_string()));
        goose.run_time = goose.run_time.take().or(p.run_time.clone());
    }
    check_goose_numbers(&goose)?;
    check_dashboard(&goose)?;
    ensure_writable(&cli.report_dir)?;
    if goose.report_file.is_empty() {
        goose.report_file = vec![
            path_str(&cli.report_dir.join("load_test.html")),
            path_str(&cli.report_dir.join("load_test.json")),
        ];
    }
    // Our CSVs and summary count every operation from the first; Goose's reports must
    // count the same ones, so its reset after ramp-up is off.
    goose.no_reset_metrics = true;
    // With --dashboard Goose keeps a run folder (for the UI's "save report"): keep it with
    // the other reports rather than in the working directory.
    if goose.dashboard && goose.output_dir.is_none() {
        goose.output_dir = Some(path_str(&cli.report_dir.join("goose-run")));
    }
    // The telnet controller binds a fixed port: two runs on one machine would collide.
    goose.no_telnet = true;
    goose.host = Some(match database {
        Some(t) => format!("pg://{}", t.display()),
        None => "pg://127.0.0.1/embedded".into(),
    });

    Ok((goose, profile))
}

/// `capacity`: the steps set the load, so only the bulk inserters' pacing is the user's; the
/// built-in `capacity` objectives unless a profile is given.
fn capacity_pacing(
    args: &crate::cli::PacingArgs,
    profile: &mut Option<crate::profile::Profile>,
) -> Result<Pacing, ConfigError> {
    if profile.is_none() {
        let built_in = crate::profile::built_in("capacity").map_err(|e| bad(e.to_string()))?;
        *profile = Some(built_in);
    }
    let mut pacing = Pacing::default();
    if let Some(t) = &args.bulk_think_time {
        pacing.bulk_think_time =
            parse_think_time(t).map_err(|e| bad(format!("--bulk-think-time {e}")))?;
    }
    Ok(pacing)
}

/// What the command line itself said (before a profile filled in the rest).
struct Explicit {
    users: Option<usize>,
    run_time: Option<String>,
    hatch_rate: bool,
}

/// The load model: think times, or an arrival schedule served by `--max-in-flight` Goose
/// users (all started at once; the run lasts as long as the schedule). Flags win over the
/// profile's fields.
fn pacing(
    args: &crate::cli::PacingArgs,
    goose: &mut GooseConfiguration,
    explicit: &Explicit,
    profile: Option<&crate::profile::Profile>,
    is_load: bool,
) -> Result<Pacing, ConfigError> {
    let from_profile = |f: fn(&crate::profile::Profile) -> Option<String>| profile.and_then(f);
    let think = args
        .think_time
        .clone()
        .or_else(|| from_profile(|p| p.think_time.clone()));
    let rate = args.arrival_rate.or(profile.and_then(|p| p.arrival_rate));
    let stages = args
        .arrival_stages
        .clone()
        .or_else(|| from_profile(|p| p.arrival_stages.clone()));
    let open_flags = args.arrival_rate.is_some()
        || args.arrival_stages.is_some()
        || args.max_in_flight.is_some();
    let closed_flags = args.think_time.is_some() || args.bulk_think_time.is_some();
    if !is_load && (open_flags || closed_flags) {
        return Err(bad(
            "--think-time, --arrival-rate, --arrival-stages and --max-in-flight pace the load \
             test; the subcommands have their own pacing",
        ));
    }
    let mut pacing = Pacing::default();
    if let Some(t) = &think {
        pacing.think_time = parse_think_time(t).map_err(|e| bad(format!("--think-time {e}")))?;
    }
    if let Some(t) = &args.bulk_think_time {
        pacing.bulk_think_time =
            parse_think_time(t).map_err(|e| bad(format!("--bulk-think-time {e}")))?;
        if pacing.bulk_think_time.1.is_zero() {
            return Err(bad(
                "--bulk-think-time must be above 0: bulk inserters are background load",
            ));
        }
    }
    if rate.is_none() && stages.is_none() {
        if args.max_in_flight.is_some() {
            return Err(bad(
                "--max-in-flight needs --arrival-rate or --arrival-stages (the open model)",
            ));
        }
        return Ok(pacing);
    }
    if args.think_time.is_some() {
        return Err(bad(
            "--think-time paces the closed model; with --arrival-rate the schedule paces the users",
        ));
    }
    pacing.open = Some(open_model(args, goose, explicit, rate, stages.as_deref())?);
    Ok(pacing)
}

/// The open model's schedule and users; sets Goose's users, start rate and run time to serve
/// it.
fn open_model(
    args: &crate::cli::PacingArgs,
    goose: &mut GooseConfiguration,
    explicit: &Explicit,
    rate: Option<f64>,
    stages: Option<&str>,
) -> Result<Open, ConfigError> {
    if explicit.hatch_rate {
        return Err(bad(
            "--hatch-rate ramps users in the closed model; in the open model ramp the rate with \
             --arrival-stages",
        ));
    }
    if goose.throttle_requests.is_some_and(|t| t > 0) {
        return Err(bad(
            "--throttle-requests contradicts --arrival-rate: give one",
        ));
    }
    if let Some(r) = rate {
        if !(r.is_finite() && (r > 0.0 || (stages.is_some() && r == 0.0))) {
            return Err(bad(format!("--arrival-rate must be above 0, got {r}")));
        }
    }
    let plan = match stages {
        Some(text) => {
            if explicit.run_time.is_some() {
                return Err(bad(
                    "give --run-time or --arrival-stages, not both: the stages set the run's length",
                ));
            }
            let stages = parse_stages(text).map_err(|e| bad(format!("--arrival-stages: {e}")))?;
            Plan {
                start_rate: rate.unwrap_or(0.0),
                stages,
                spacing: args.arrivals,
                max_lag: args.max_lag,
            }
        }
        None => {
            let run_time = goose.run_time.as_deref().ok_or_else(|| {
                bad("--arrival-rate needs --run-time (or ramp it with --arrival-stages)")
            })?;
            let duration = humantime::parse_duration(run_time)
                .or_else(|_| run_time.parse::<u64>().map(Duration::from_secs))
                .map_err(|_| bad(format!("--run-time '{run_time}' is not a duration")))?;
            Plan::constant(
                rate.expect("open model"),
                duration,
                args.arrivals,
                args.max_lag,
            )
        }
    };
    if args.max_lag.is_zero() {
        return Err(bad("--max-lag must be above 0"));
    }
    if let (Some(users), Some(n)) = (explicit.users, args.max_in_flight) {
        if users != n {
            return Err(bad(
                "in the open model --users and --max-in-flight are the same number (the users \
                 serving arrivals): give one",
            ));
        }
    }
    let max_in_flight = args.max_in_flight.or(goose.users).unwrap_or(100);
    if max_in_flight == 0 {
        return Err(bad("--max-in-flight must be at least 1"));
    }
    goose.users = Some(max_in_flight);
    // All users start within the first second: the schedule, not the users, ramps the load.
    goose.increase_rate = Some(max_in_flight.to_string());
    goose.run_time = Some(format!("{}s", plan.duration().as_secs_f64().ceil() as u64));
    // Goose times whole transactions and scenarios, which here include the wait for the
    // next arrival: its request figures (ours, from the intended start) are the ones to read.
    goose.no_transaction_metrics = true;
    goose.no_scenario_metrics = true;
    Ok(Open {
        plan,
        max_in_flight,
    })
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

/// Goose checks these too, but only once the load test starts: after seeding. Checking here
/// fails in a second rather than after minutes of setup.
fn check_goose_numbers(goose: &GooseConfiguration) -> Result<(), ConfigError> {
    if goose.users == Some(0) {
        return Err(bad("--users must be at least 1"));
    }
    for (flag, value) in [
        ("--increase-rate/--hatch-rate", &goose.increase_rate),
        ("--decrease-rate", &goose.decrease_rate),
    ] {
        if let Some(v) = value {
            match v.parse::<f64>() {
                Ok(r) if r > 0.0 && r.is_finite() => {}
                _ => return Err(bad(format!("{flag} must be a number above 0, got '{v}'"))),
            }
        }
    }
    for (flag, value) in [
        ("--run-time", &goose.run_time),
        ("--increase-time", &goose.increase_time),
    ] {
        if let Some(v) = value {
            let ok = humantime::parse_duration(v)
                .map(|d| !d.is_zero())
                .unwrap_or_else(|_| v.parse::<u64>().map(|n| n > 0).unwrap_or(false));
            if !ok {
                return Err(bad(format!(
                    "{flag} must be a positive duration such as 30s, 10m or 1h, got '{v}'"
                )));
            }
        }
    }
    Ok(())
}

/// Goose refuses a web UI that anyone could control, but only when the load test starts:
/// after seeding. The same rules, checked before anything runs.
fn check_dashboard(goose: &GooseConfiguration) -> Result<(), ConfigError> {
    let token = goose
        .dashboard_auth_token
        .as_deref()
        .is_some_and(|t| !t.trim().is_empty());
    if !goose.dashboard || goose.dashboard_no_auth || token {
        return Ok(());
    }
    if goose.dashboard_control {
        return Err(bad(
            "--dashboard-control needs --dashboard-auth-token (or, on a trusted network, --dashboard-no-auth)",
        ));
    }
    let host = goose
        .dashboard_host
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .unwrap_or("127.0.0.1");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(bad(format!(
            "--dashboard-host {host} is not a loopback address: give --dashboard-auth-token (or --dashboard-no-auth)"
        )));
    }
    Ok(())
}

/// Creates the report directory and proves it writable now, not after ten minutes of load.
fn ensure_writable(dir: &Path) -> Result<(), ConfigError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| bad(format!("report directory {}: {e}", dir.display())))?;
    tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        bad(format!(
            "report directory {} is not writable: {e}",
            dir.display()
        ))
    })?;
    Ok(())
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
