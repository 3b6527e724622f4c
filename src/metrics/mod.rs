//! The Prometheus exporter: one `/metrics` endpoint (warp) serving the harness's client-side
//! measurements ([`client`]) and the server-side state polled from PostgreSQL ([`server`]).
//!
//! It runs as a sidecar inside the load test and the benchmarks ([`Sidecar`]), and alone as the
//! `metrics` subcommand ([`serve`]) to watch a production cluster. Every series it
//! exports is the contract that `monitoring/` (dashboard, alert rules) is written against, and
//! the integration tests prove the two agree.
//!
//! # Layout
//! - [`exporter`]: binding the listener (a busy port is a clear error) and serving `/metrics`.
//! - [`client`]: latency histograms, query/result/error counters, pool gauges, recall.
//! - [`recall`]: recall@k sampled under load against exact ground truth, off the timed path.
//! - [`server`]: the poller of connections, sizes, replication, cache hit ratio, versions;
//!   [`server_sql`]: its SQL (and the Citus variant).

pub mod client;
pub mod exporter;
pub mod recall;
pub mod schedule;
pub mod server;
pub mod server_sql;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::db::target::Target;
use crate::db::Endpoints;
pub use client::ClientMetrics;

pub use crate::config::{MetricsSettings as Settings, DEFAULT_METRICS_PORT as DEFAULT_PORT};

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listen address is taken or not ours to bind.
    #[error("metrics exporter cannot listen on {addr}: {source}{hint}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// A metric family could not be registered (a programming error: duplicate names).
    #[error("metrics registry: {0}")]
    Registry(#[from] prometheus::Error),
}

impl MetricsError {
    /// The exit code: a port that cannot be bound is found before anything runs (2); a
    /// registry that refuses our families is a defect, not the user's doing (1).
    pub fn exit(&self) -> crate::Exit {
        match self {
            MetricsError::Bind { .. } => crate::Exit::Usage,
            MetricsError::Registry(_) => crate::Exit::Failed,
        }
    }
}

/// What [`bind_for`] found.
pub enum Listener {
    /// The exporter's listener.
    Bound(TcpListener),
    /// The *default* port is taken: the sidecar is skipped, with a warning.
    DefaultPortBusy(SocketAddr),
    /// No sidecar for this run (`setup`, or `--no-metrics-exporter`).
    Off,
}

/// Binds the exporter's listener before anything else runs, so that a busy port fails in a
/// second rather than after seeding. For the `metrics` command (`standalone`) and for a port
/// the user asked for, a taken port is an error. When only the default port is taken (a
/// Prometheus on the same machine listens there too), the run goes on without the sidecar.
pub async fn bind_for(settings: &Settings, standalone: bool) -> Result<Listener, MetricsError> {
    if standalone {
        return exporter::bind(settings.addr).await.map(Listener::Bound);
    }
    if !settings.sidecar {
        return Ok(Listener::Off);
    }
    match exporter::bind(settings.addr).await {
        Ok(listener) => Ok(Listener::Bound(listener)),
        Err(MetricsError::Bind { addr, source, .. })
            if !settings.port_given && source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            Ok(Listener::DefaultPortBusy(addr))
        }
        Err(e) => Err(e),
    }
}

/// Starts the sidecar of a load test or benchmark on the listener from [`bind_for`], polling
/// `endpoints`; stop it after the job.
pub fn start(
    listener: Listener,
    settings: &Settings,
    endpoints: &Endpoints,
) -> Result<Sidecar, MetricsError> {
    match listener {
        Listener::Bound(listener) => Sidecar::start(
            listener,
            settings.poll_interval,
            endpoints.primary.clone(),
            endpoints.replicas.clone(),
        ),
        Listener::DefaultPortBusy(addr) => Ok(Sidecar::skipped(addr)),
        Listener::Off => Ok(Sidecar::off()),
    }
}

/// The exporter beside a load test or benchmark: running (the registry it serves, the
/// server-side poller, the HTTP task), or off with the reason to tell the user.
pub struct Sidecar {
    running: Option<Running>,
    skipped: Option<SocketAddr>,
}

struct Running {
    addr: SocketAddr,
    client: Arc<ClientMetrics>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Sidecar {
    /// Serves `/metrics` on `listener` and starts polling `primary` and `replicas` every
    /// `poll_interval`.
    pub fn start(
        listener: TcpListener,
        poll_interval: Duration,
        primary: Target,
        replicas: Vec<Target>,
    ) -> Result<Sidecar, MetricsError> {
        let addr = listener.local_addr().map_err(|source| MetricsError::Bind {
            addr: ([0, 0, 0, 0], 0).into(),
            source,
            hint: "",
        })?;
        let registry = Registry::new();
        let client = ClientMetrics::register(&registry)?;
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let poller = server::Poller::new(primary, replicas);
        registry.register(Box::new(poller.collector()))?;
        tasks.spawn(poller.run(poll_interval, shutdown.clone()));
        tasks.spawn(exporter::serve(listener, registry, shutdown.clone()));
        tasks.close();
        Ok(Sidecar {
            running: Some(Running {
                addr,
                client,
                shutdown,
                tasks,
            }),
            skipped: None,
        })
    }

    /// No exporter for this run.
    pub fn off() -> Sidecar {
        Sidecar {
            running: None,
            skipped: None,
        }
    }

    fn skipped(addr: SocketAddr) -> Sidecar {
        Sidecar {
            running: None,
            skipped: Some(addr),
        }
    }

    /// Where `/metrics` is served, when it is.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.running.as_ref().map(|r| r.addr)
    }

    /// The client-side families, for the load test and the benchmarks to record into.
    pub fn client(&self) -> Option<Arc<ClientMetrics>> {
        self.running.as_ref().map(|r| r.client.clone())
    }

    /// Says where metrics are served, or why they are not. Called when the load begins, not
    /// when the sidecar starts, so that a usage error found while preparing the data is still
    /// the only line on stderr.
    pub fn announce(&self) {
        if let Some(addr) = self.addr() {
            eprintln!("metrics exporter on http://{addr}/metrics");
        } else if let Some(addr) = self.skipped {
            eprintln!(
                "warning: metrics exporter not started: {addr} is in use (choose a port with \
                 --metrics-port, or --no-metrics-exporter to silence this)"
            );
        }
    }

    /// Stops polling and serving; waits at most a few seconds for the tasks to end.
    pub async fn stop(self) {
        if let Some(running) = self.running {
            running.shutdown.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), running.tasks.wait()).await;
        }
    }
}

/// The `metrics` subcommand: serves `/metrics` for `endpoints` until `stop` is cancelled
/// (Ctrl-C). Only the server-side families carry data; the client-side ones appear when a
/// load test or benchmark runs with its own sidecar.
pub async fn serve(
    listener: Listener,
    settings: &Settings,
    endpoints: &Endpoints,
    stop: &CancellationToken,
) -> Result<(), MetricsError> {
    let poll_interval = settings.poll_interval;
    let described = endpoints.primary.display();
    let sidecar = start(listener, settings, endpoints)?;
    eprintln!(
        "serving metrics of {described} on http://{}/metrics, polled every {} (Ctrl-C to stop)",
        sidecar.addr().unwrap_or(([127, 0, 0, 1], 0).into()),
        humantime::format_duration(poll_interval)
    );
    stop.cancelled().await;
    sidecar.stop().await;
    Ok(())
}
