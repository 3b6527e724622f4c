//! The run from validated configuration to exit code: endpoints, schema and seed, the load
//! test, reports, shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::bench::BenchError;
use crate::calibrate::CalibrateError;
use crate::cleanup::CleanupError;
use crate::config::{Config, Data, Mode};
use crate::db::pool::Session;
use crate::db::schema::{self, Prepared, SchemaError};
use crate::db::target::{ConnectError, Target};
use crate::db::{seed, EndpointError, Endpoints};
use crate::distributed::record::WorkerRecord;
use crate::distributed::rendezvous;
use crate::load::{self, LoadError};
use crate::metrics::{Listener, MetricsError, Sidecar};
use crate::report::summary::{Generators, RunInfo};
use crate::shutdown::Shutdown;
use crate::workload::dataset::{Dataset, DatasetError};
use crate::Exit;

/// A failure that ends the run; [`AppError::exit`] says which exit code it is.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The exporter could not start.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The embedded server could not be provisioned.
    #[error(transparent)]
    Endpoints(#[from] EndpointError),
    /// The dataset could not be built (a vectors file).
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// An endpoint did not answer before anything ran.
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// Endpoint, without credentials.
        target: String,
        /// Cause.
        #[source]
        source: ConnectError,
    },
    /// pgvector or the table is not what the run needs, or the schema setup failed.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// Seeding began and failed.
    #[error("seeding failed: {0}")]
    Seed(#[source] crate::db::seed::SeedError),
    /// A replica did not replay the seed in time.
    #[error("replica {replica} has {rows} of {wanted} seeded rows after 120 s")]
    ReplicaBehind {
        /// Endpoint, without credentials.
        replica: String,
        /// Seeded rows it has.
        rows: i64,
        /// Seeded rows there are.
        wanted: usize,
    },
    /// The `cleanup` command failed.
    #[error(transparent)]
    Cleanup(#[from] CleanupError),
    /// The load test could not run or complete.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The benchmark suite could not run or complete.
    #[error(transparent)]
    Bench(#[from] BenchError),
    /// `calibrate` could not run or complete.
    #[error(transparent)]
    Calibrate(#[from] CalibrateError),
    /// `capacity` could not run or complete.
    #[error(transparent)]
    Capacity(#[from] crate::capacity::CapacityError),
    /// The load test ran, and its reports could not be written.
    #[error("writing reports in {}: {source}", .dir.display())]
    Reports {
        /// The report directory.
        dir: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Several generators could not start together.
    #[error(transparent)]
    Rendezvous(#[from] crate::distributed::rendezvous::RendezvousError),
    /// Stopped by a signal before the load test began (exit 130).
    #[error("interrupted")]
    Interrupted,
}

impl AppError {
    /// The exit code, decided by what happened (see the README's table): an endpoint that
    /// does not answer before anything ran is a usage error (2); seeding that fails once
    /// begun, a replica that never catches up, or reports that cannot be written end a run
    /// that started (1). The wrapped errors decide for themselves.
    pub fn exit(&self) -> Exit {
        match self {
            AppError::Metrics(e) => e.exit(),
            AppError::Endpoints(e) => e.exit(),
            AppError::Dataset(e) => e.exit(),
            AppError::Connect { .. } => Exit::Usage,
            AppError::Schema(e) => e.exit(),
            AppError::Seed(_) | AppError::ReplicaBehind { .. } | AppError::Reports { .. } => {
                Exit::Failed
            }
            AppError::Cleanup(e) => e.exit(),
            AppError::Load(e) => e.exit(),
            AppError::Bench(e) => e.exit(),
            AppError::Calibrate(e) => e.exit(),
            AppError::Capacity(e) => e.exit(),
            AppError::Rendezvous(e) => e.exit(),
            AppError::Interrupted => Exit::Interrupted,
        }
    }
}

/// Runs the configured job.
pub async fn run(config: Config, shutdown: &Shutdown) -> Result<Exit, AppError> {
    // Bound before anything runs: a busy exporter port fails now, not after seeding.
    let listener = crate::metrics::bind_for(&config.metrics, config.mode == Mode::Metrics).await?;
    let servers = &config.servers;
    let open = Endpoints::open(
        servers.primary.as_ref(),
        &servers.replicas,
        &servers.embedded,
        shutdown.children(),
    );
    let endpoints = tokio::select! {
        e = open => e?,
        _ = shutdown.triggered() => return Err(AppError::Interrupted),
    };
    let result = run_on(&config, listener, &endpoints, shutdown).await;
    endpoints.shutdown().await;
    result
}

/// One `match` over the mode. Each mode receives the endpoints and only the sections of the
/// configuration it reads; the load test and `bench` have the exporter beside them.
async fn run_on(
    config: &Config,
    listener: Listener,
    endpoints: &Endpoints,
    shutdown: &Shutdown,
) -> Result<Exit, AppError> {
    match &config.mode {
        Mode::Metrics => {
            crate::metrics::serve(listener, &config.metrics, endpoints, &shutdown.token()).await?;
            Ok(Exit::Success)
        }
        Mode::Cleanup => {
            crate::cleanup::run(&endpoints.primary).await?;
            Ok(Exit::Success)
        }
        Mode::Setup => {
            let dataset = prepare(config, endpoints, shutdown).await?;
            println!(
                "memory_entries ready on {}: {}",
                endpoints.primary.display(),
                dataset.describe()
            );
            Ok(Exit::Success)
        }
        Mode::Calibrate(settings) => {
            let dataset = prepare(config, endpoints, shutdown).await?;
            let job = crate::calibrate::Job {
                settings,
                session: &config.connections.session,
                workload: &config.workload,
                reports: &config.reports,
                pg_bin: config.servers.embedded.pg_bin.as_deref(),
            };
            Ok(crate::calibrate::run(job, &endpoints.primary, dataset, shutdown).await?)
        }
        Mode::Bench(settings) => {
            let sidecar = crate::metrics::start(listener, &config.metrics, endpoints)?;
            let job = crate::bench::Job {
                settings,
                connections: &config.connections,
                table: &config.data.table,
                workload: &config.workload,
                reports: &config.reports,
            };
            let result = run_bench(config, job, endpoints, shutdown, &sidecar).await;
            sidecar.stop().await;
            result
        }
        Mode::Load => {
            let sidecar = crate::metrics::start(listener, &config.metrics, endpoints)?;
            let result = run_load(config, endpoints, shutdown, &sidecar).await;
            sidecar.stop().await;
            result
        }
        Mode::Capacity(settings) => {
            let sidecar = crate::metrics::start(listener, &config.metrics, endpoints)?;
            let job = crate::capacity::Job {
                settings,
                connections: &config.connections,
                workload: &config.workload,
                pacing: &config.pacing,
                goose: &config.goose,
                reports: &config.reports,
                table: &config.data.table,
            };
            let result = run_capacity(config, job, endpoints, shutdown, &sidecar).await;
            sidecar.stop().await;
            result
        }
    }
}

/// The capacity search on prepared data.
async fn run_capacity(
    config: &Config,
    job: crate::capacity::Job<'_>,
    endpoints: &Endpoints,
    shutdown: &Shutdown,
    sidecar: &Sidecar,
) -> Result<Exit, AppError> {
    let dataset = prepare_for_load(config, endpoints, shutdown, sidecar).await?;
    let run = crate::capacity::run(job, endpoints, dataset, sidecar.client(), shutdown);
    Ok(run.await?)
}

/// The data, on every endpoint: the replicas must have replayed the seed before reads go to
/// them. Then the exporter is announced: the load begins.
async fn prepare_for_load(
    config: &Config,
    endpoints: &Endpoints,
    shutdown: &Shutdown,
    sidecar: &Sidecar,
) -> Result<Arc<Dataset>, AppError> {
    let dataset = prepare(config, endpoints, shutdown).await?;
    if !endpoints.replicas.is_empty() {
        wait_for_replicas(&endpoints.replicas, dataset.total_rows()).await?;
    }
    sidecar.announce();
    Ok(dataset)
}

/// The data every mode but `metrics` and `cleanup` runs on, prepared unless a signal comes
/// first.
async fn prepare(
    config: &Config,
    endpoints: &Endpoints,
    shutdown: &Shutdown,
) -> Result<Arc<Dataset>, AppError> {
    let session = &config.connections.session;
    tokio::select! {
        d = prepare_data(&config.data, session, &endpoints.primary) => d,
        _ = shutdown.triggered() => Err(AppError::Interrupted),
    }
}

/// The benchmark suite on prepared data.
async fn run_bench(
    config: &Config,
    job: crate::bench::Job<'_>,
    endpoints: &Endpoints,
    shutdown: &Shutdown,
    sidecar: &Sidecar,
) -> Result<Exit, AppError> {
    let dataset = prepare(config, endpoints, shutdown).await?;
    sidecar.announce();
    let run = crate::bench::run(job, endpoints, dataset, sidecar.client(), shutdown);
    Ok(run.await?)
}

/// The load test on prepared data: waits for replicas to catch up, runs, writes the reports,
/// picks the exit.
async fn run_load(
    config: &Config,
    endpoints: &Endpoints,
    shutdown: &Shutdown,
    sidecar: &Sidecar,
) -> Result<Exit, AppError> {
    let dataset = prepare_for_load(config, endpoints, shutdown, sidecar).await?;
    let versions = crate::db::versions::of(&endpoints.primary).await;
    if let Some(w) = &config.worker {
        rendezvous::owns_namespaces(w, dataset.namespace_count())?;
        rendezvous::meet(&endpoints.primary, w, shutdown).await?;
        eprintln!("{}: starting", w.label());
    }
    let started_at = chrono::Utc::now();
    let job = load::Job {
        connections: &config.connections,
        workload: &config.workload,
        pacing: &config.pacing,
        goose: &config.goose,
        status: Some(config.reports.status_interval),
        generator: config
            .worker
            .as_ref()
            .map_or((0, 1), |w| (w.index, w.count)),
        events: &config.events,
        patroni: &config.patroni,
        table: &config.data.table,
        // One generator probes for the whole test.
        visibility: config
            .visibility
            .filter(|_| config.worker.as_ref().is_none_or(|w| w.index == 0)),
    };
    let result = load::run(job, endpoints, dataset.clone(), sidecar.client(), shutdown).await?;
    let (table, session) = (&config.data.table, &config.connections.session);
    let info = RunInfo {
        started_at,
        elapsed: result.elapsed,
        target: endpoints.primary.display(),
        layout: table.layout.to_string(),
        dataset: dataset.describe(),
        index: table.describe_index(session),
        max_users: result.max_users,
        versions,
        generators: config.worker.as_ref().map(|w| Generators {
            run_id: w.run_id.clone(),
            count: w.count,
            index: Some(w.index),
        }),
        interrupted: result.interrupted,
    };
    let reports = &config.reports;
    let written = load::reports::write(reports, &info, &result).and_then(|verdicts| {
        if let Some(w) = &config.worker {
            let profile = reports.profile.as_ref().map(|p| p.source.clone());
            WorkerRecord::new(w, &info, &result, profile).write(&reports.dir)?;
        }
        Ok(verdicts)
    });
    let (verdicts, gate) = written.map_err(|source| AppError::Reports {
        dir: reports.dir.clone(),
        source,
    })?;
    Ok(load::reports::exit(reports, &result, &verdicts, &gate))
}

/// Builds the dataset, makes sure pgvector and the table exist, and seeds when needed.
pub async fn prepare_data(
    data: &Data,
    session: &Session,
    primary: &Target,
) -> Result<Arc<Dataset>, AppError> {
    let dataset = match &data.vectors_file {
        Some(path) => Dataset::open_file(path, data.dataset.clone(), &data.files),
        None => Dataset::synthetic(data.dataset.clone()),
    }
    .map(Arc::new)?;
    let client = primary
        .connect()
        .await
        .map_err(|e| connect_error(primary, e))?;
    // One process at a time prepares the data (held by this session until it is released):
    // several generators, or a `setup` beside a run, seed once; the others wait, then reuse
    // it. Complete data needs no lock, which a transaction pooler would not keep anyway.
    let complete = !data.reset && schema::is_complete(&client, &dataset.fingerprint()).await?;
    if !complete {
        schema::lock_for_seeding(&client).await?;
    }
    let prepared = prepare_table(data, session, primary, &client, dataset).await;
    if !complete {
        schema::unlock_seeding(&client).await;
    }
    prepared
}

/// Makes sure pgvector and the table exist, and seeds when needed (under the seeding lock).
async fn prepare_table(
    data: &Data,
    session: &Session,
    primary: &Target,
    client: &tokio_postgres::Client,
    dataset: Arc<Dataset>,
) -> Result<Arc<Dataset>, AppError> {
    let version = schema::ensure_pgvector(
        client,
        session.iterative_scan != "off",
        data.table.vector_type == crate::workload::VectorType::Halfvec,
    )
    .await?;
    let namespaces: Vec<String> = (0..dataset.namespace_count())
        .map(|ns| dataset.namespace_name(ns))
        .collect();
    let prepared = schema::prepare(
        client,
        &data.table,
        &namespaces,
        &dataset.fingerprint(),
        data.reset,
    )
    .await?;
    if prepared == Prepared::Reuse {
        eprintln!(
            "reusing seeded data ({}; pgvector {version})",
            dataset.describe()
        );
        return Ok(dataset);
    }
    eprintln!("seeding {} ...", dataset.describe());
    let timings = seed::copy_dataset(primary, dataset.clone(), data.table.vector_type, 2)
        .await
        .map_err(AppError::Seed)?;
    eprintln!(
        "copied {} rows in {:.1}s ({:.0} rows/s, binary COPY); building the index ({}) ...",
        timings.rows,
        timings.copy.as_secs_f64(),
        timings.rows_per_sec(),
        data.table.shape().rsplit(", ").next().unwrap_or_default()
    );
    let index_started = Instant::now();
    schema::finish(client, &data.table, &dataset.describe()).await?;
    eprintln!(
        "index built in {:.1}s; harness peak memory {:.0} MiB",
        index_started.elapsed().as_secs_f64(),
        crate::engine::overhead::peak_rss_mib()
    );
    Ok(dataset)
}

fn connect_error(target: &Target, source: ConnectError) -> AppError {
    AppError::Connect {
        target: target.display(),
        source,
    }
}

/// Replicas must have replayed the seed before reads go to them, or searches would find
/// nothing and retrieves would miss.
async fn wait_for_replicas(replicas: &[Target], rows: usize) -> Result<(), AppError> {
    for replica in replicas {
        let client = replica
            .connect()
            .await
            .map_err(|e| connect_error(replica, e))?;
        let deadline = Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let n: i64 = match client
                .query_one(
                    "SELECT count(*) FROM memory_entries WHERE key NOT LIKE $1",
                    &[&crate::engine::inserted_key_pattern()],
                )
                .await
            {
                Ok(row) => row.get(0),
                Err(_) => 0,
            };
            if n as usize >= rows {
                break;
            }
            if Instant::now() > deadline {
                return Err(AppError::ReplicaBehind {
                    replica: replica.display(),
                    rows: n,
                    wanted: rows,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
    Ok(())
}
