//! Server-side series, polled from PostgreSQL every `--poll-interval` on connections of their
//! own (reopened when they break).
//!
//! | Series | Labels | Source |
//! | --- | --- | --- |
//! | `db_up` | | the poll of the primary succeeded |
//! | `db_connections_active`, `_idle`, `_total` | `datname` | client backends in `pg_stat_activity` of every database on the server (`sum` them to compare with `max_connections`), by `state` |
//! | `db_max_connections` | | `max_connections` |
//! | `table_size_bytes`, `table_row_count` | `schema`, `table_name` | `pg_table_size` (indexes excluded: see `index_size_bytes`), `pg_stat_user_tables.n_live_tup`; a partitioned table is the sum of its partitions |
//! | `index_size_bytes` | `schema`, `index_name`, `table_name`, `index_method` | `pg_relation_size`; a partitioned index is the sum of its partitions' |
//! | `replication_lag_seconds`, `replication_lag_bytes` | `replica` | `pg_stat_replication` on the primary: `replay_lag` (NULL, i.e. caught up, is 0) and `pg_current_wal_lsn() - replay_lsn` |
//! | `replica_up` | `replica` (`host:port`) | each configured replica answers and `pg_is_in_recovery()` |
//! | `cache_hit_ratio` | | `blks_hit / (blks_hit + blks_read)` of the current database over the last interval |
//! | `postgres_info` | `server_version`, `pgvector_version` | constant 1 |
//!
//! Each poll builds a complete new snapshot that replaces the previous one whole: a series that
//! could not be measured this time (server down, replica gone) disappears instead of repeating
//! a stale value. With the `citus` extension, the sizes and row counts of distributed tables
//! come from Citus (see [`super::server_sql`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, Opts, Registry};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use super::client::endpoint_label;
use crate::db::target::Target;

/// Longest a poll may take before the server counts as down for this interval.
const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// What one poll of the primary read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrimaryState {
    /// `server_version`.
    pub server_version: String,
    /// pgvector's version, `none` without the extension.
    pub pgvector_version: String,
    /// `max_connections`.
    pub max_connections: f64,
    /// Client backends per database, server-wide: `(datname, active, idle, all)`.
    pub connections: Vec<(String, f64, f64, f64)>,
    /// Cumulative `blks_hit`, `blks_read` of this database.
    pub blocks: (i64, i64),
    /// `(schema, table, bytes, rows)`.
    pub tables: Vec<(String, String, f64, f64)>,
    /// `(schema, index, table, method, bytes)`.
    pub indexes: Vec<(String, String, String, String, f64)>,
    /// `(replica, lag seconds, lag bytes if known)`.
    pub replication: Vec<(String, f64, Option<f64>)>,
}

/// The series that one poll produced.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The primary's state, `None` when it could not be read.
    pub primary: Option<PrimaryState>,
    /// Hit ratio over the interval since the previous successful poll.
    pub cache_hit_ratio: Option<f64>,
    /// `(host:port, up)` of every configured replica.
    pub replicas: Vec<(String, bool)>,
}

/// Polls the primary and the configured replicas.
pub struct Poller {
    primary: Target,
    replicas: Vec<Target>,
    families: Arc<Mutex<Vec<MetricFamily>>>,
    primary_client: Option<Client>,
    replica_clients: Vec<Option<Client>>,
    last_blocks: Option<(i64, i64)>,
    // Table and index sizes too (the exporter), or only what the load test's watch reads.
    sizes: bool,
    // Polls of the primary that failed in a row: only the first is logged (a failover
    // would otherwise log one line a second).
    failing: u32,
}

impl Poller {
    /// A poller that has not polled yet.
    pub fn new(primary: Target, replicas: Vec<Target>) -> Poller {
        let replica_clients = replicas.iter().map(|_| None).collect();
        Poller {
            primary,
            replicas,
            families: Arc::new(Mutex::new(Vec::new())),
            primary_client: None,
            replica_clients,
            last_blocks: None,
            sizes: true,
            failing: 0,
        }
    }

    /// A poller of the primary's cache counters, connections and replication only: no
    /// table or index sizes (the load test's once-a-second watch).
    pub fn vitals(primary: Target) -> Poller {
        Poller {
            sizes: false,
            ..Poller::new(primary, Vec::new())
        }
    }

    /// The collector that serves the latest snapshot; register it in the exporter's registry.
    pub fn collector(&self) -> SnapshotCollector {
        SnapshotCollector {
            descs: descs(),
            families: self.families.clone(),
        }
    }

    /// Polls now and then every `interval` until `stop` is cancelled.
    pub async fn run(mut self, interval: Duration, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.cancelled() => return,
            }
            let snapshot = tokio::select! {
                s = self.poll() => s,
                _ = stop.cancelled() => return,
            };
            self.publish(&snapshot);
        }
    }

    /// One poll of every endpoint.
    pub async fn poll(&mut self) -> Snapshot {
        let failed = match tokio::time::timeout(POLL_TIMEOUT, self.poll_primary()).await {
            Ok(Ok(state)) => Ok(state),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer in {POLL_TIMEOUT:?}")),
        };
        let primary = match failed {
            Ok(state) => {
                if self.failing > 0 {
                    log::warn!(
                        "polling {}: answering again after {} failed polls",
                        self.primary.display(),
                        self.failing
                    );
                }
                self.failing = 0;
                Some(state)
            }
            Err(e) => {
                if self.failing == 0 {
                    log::warn!(
                        "polling {}: {e} (further failures are logged when it answers again)",
                        self.primary.display()
                    );
                }
                self.failing += 1;
                self.primary_client = None;
                None
            }
        };
        let cache_hit_ratio = match &primary {
            Some(state) => {
                let ratio = self
                    .last_blocks
                    .and_then(|prev| interval_hit_ratio(prev, state.blocks));
                self.last_blocks = Some(state.blocks);
                ratio
            }
            None => None,
        };
        let mut replicas = Vec::new();
        for i in 0..self.replicas.len() {
            let up = matches!(
                tokio::time::timeout(POLL_TIMEOUT, self.poll_replica(i)).await,
                Ok(Ok(true))
            );
            if !up {
                self.replica_clients[i] = None;
            }
            replicas.push((endpoint_label(&self.replicas[i]), up));
        }
        Snapshot {
            primary,
            cache_hit_ratio,
            replicas,
        }
    }

    async fn poll_primary(&mut self) -> Result<PrimaryState, PollError> {
        if self.primary_client.as_ref().is_none_or(Client::is_closed) {
            self.primary_client = Some(self.primary.connect().await?);
        }
        let client = self.primary_client.as_ref().expect("connected above");
        Ok(super::server_sql::read_primary(client, self.sizes).await?)
    }

    async fn poll_replica(&mut self, i: usize) -> Result<bool, PollError> {
        if self.replica_clients[i]
            .as_ref()
            .is_none_or(Client::is_closed)
        {
            self.replica_clients[i] = Some(self.replicas[i].connect().await?);
        }
        let client = self.replica_clients[i].as_ref().expect("connected above");
        let row = client.query_one("SELECT pg_is_in_recovery()", &[]).await?;
        Ok(row.get(0))
    }

    /// Replaces the served snapshot.
    pub fn publish(&self, snapshot: &Snapshot) {
        let families = families(snapshot).unwrap_or_else(|e| {
            log::warn!("building server metrics: {e}");
            Vec::new()
        });
        *self.families.lock().unwrap_or_else(|p| p.into_inner()) = families;
    }
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error(transparent)]
    Connect(#[from] crate::db::target::ConnectError),
    #[error("{}", crate::db::target::describe_pg_error(.0))]
    Query(#[from] tokio_postgres::Error),
}

/// Hit ratio between two cumulative readings; `None` when nothing was read (no ratio to speak
/// of) or the counters went backwards (statistics reset).
pub fn interval_hit_ratio(prev: (i64, i64), now: (i64, i64)) -> Option<f64> {
    let hit = now.0 - prev.0;
    let read = now.1 - prev.1;
    if hit < 0 || read < 0 || hit + read == 0 {
        return None;
    }
    Some(hit as f64 / (hit + read) as f64)
}

struct Families {
    db_up: Gauge,
    active: GaugeVec,
    idle: GaugeVec,
    total: GaugeVec,
    max_connections: Gauge,
    table_size: GaugeVec,
    table_rows: GaugeVec,
    index_size: GaugeVec,
    lag_seconds: GaugeVec,
    lag_bytes: GaugeVec,
    replica_up: GaugeVec,
    cache_hit_ratio: Gauge,
    info: GaugeVec,
}

impl Families {
    fn new() -> Result<Families, prometheus::Error> {
        let gauge = |name: &str, help: &str| Gauge::new(name, help);
        let vec =
            |name: &str, help: &str, labels: &[&str]| GaugeVec::new(Opts::new(name, help), labels);
        Ok(Families {
            db_up: gauge("db_up", "1 when the last poll of the primary succeeded, else 0")?,
            active: vec(
                "db_connections_active",
                "Client connections running a query, per database (sum for the server)",
                &["datname"],
            )?,
            idle: vec(
                "db_connections_idle",
                "Idle client connections, per database (sum for the server)",
                &["datname"],
            )?,
            total: vec(
                "db_connections_total",
                "Client connections in any state, per database (sum for the server)",
                &["datname"],
            )?,
            max_connections: gauge("db_max_connections", "The server's max_connections")?,
            table_size: vec(
                "table_size_bytes",
                "Table size without indexes (pg_table_size); partitioned tables sum their partitions",
                &["schema", "table_name"],
            )?,
            table_rows: vec(
                "table_row_count",
                "Estimated live rows (n_live_tup); partitioned tables sum their partitions",
                &["schema", "table_name"],
            )?,
            index_size: vec(
                "index_size_bytes",
                "Index size; partitioned indexes sum their partitions",
                &["schema", "index_name", "table_name", "index_method"],
            )?,
            lag_seconds: vec(
                "replication_lag_seconds",
                "Replay lag of each streaming replica (0 when caught up)",
                &["replica"],
            )?,
            lag_bytes: vec(
                "replication_lag_bytes",
                "WAL bytes the replica has yet to replay",
                &["replica"],
            )?,
            replica_up: vec(
                "replica_up",
                "1 when the configured replica answers and is in recovery, else 0",
                &["replica"],
            )?,
            cache_hit_ratio: gauge(
                "cache_hit_ratio",
                "Share of block reads served from shared buffers over the last poll interval",
            )?,
            info: vec(
                "postgres_info",
                "Server and pgvector versions (value 1)",
                &["server_version", "pgvector_version"],
            )?,
        })
    }

    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.db_up.clone()),
            Box::new(self.active.clone()),
            Box::new(self.idle.clone()),
            Box::new(self.total.clone()),
            Box::new(self.max_connections.clone()),
            Box::new(self.table_size.clone()),
            Box::new(self.table_rows.clone()),
            Box::new(self.index_size.clone()),
            Box::new(self.lag_seconds.clone()),
            Box::new(self.lag_bytes.clone()),
            Box::new(self.replica_up.clone()),
            Box::new(self.cache_hit_ratio.clone()),
            Box::new(self.info.clone()),
        ]
    }
}

fn descs() -> Vec<Desc> {
    Families::new()
        .map(|f| {
            f.collectors()
                .iter()
                .flat_map(|c| c.desc().into_iter().cloned().collect::<Vec<_>>())
                .collect()
        })
        .unwrap_or_default()
}

/// The metric families of `snapshot`: only what was measured.
pub fn families(snapshot: &Snapshot) -> Result<Vec<MetricFamily>, prometheus::Error> {
    let f = Families::new()?;
    let registry = Registry::new();
    f.db_up
        .set(if snapshot.primary.is_some() { 1.0 } else { 0.0 });
    registry.register(Box::new(f.db_up.clone()))?;
    for (replica, up) in &snapshot.replicas {
        f.replica_up
            .with_label_values(&[replica])
            .set(if *up { 1.0 } else { 0.0 });
    }
    registry.register(Box::new(f.replica_up.clone()))?;
    if let Some(ratio) = snapshot.cache_hit_ratio {
        f.cache_hit_ratio.set(ratio);
        registry.register(Box::new(f.cache_hit_ratio.clone()))?;
    }
    if let Some(p) = &snapshot.primary {
        f.info
            .with_label_values(&[&p.server_version, &p.pgvector_version])
            .set(1.0);
        f.max_connections.set(p.max_connections);
        for (datname, active, idle, total) in &p.connections {
            f.active.with_label_values(&[datname]).set(*active);
            f.idle.with_label_values(&[datname]).set(*idle);
            f.total.with_label_values(&[datname]).set(*total);
        }
        for (schema, table, bytes, rows) in &p.tables {
            f.table_size.with_label_values(&[schema, table]).set(*bytes);
            f.table_rows.with_label_values(&[schema, table]).set(*rows);
        }
        for (schema, index, table, method, bytes) in &p.indexes {
            f.index_size
                .with_label_values(&[schema, index, table, method])
                .set(*bytes);
        }
        for (replica, seconds, bytes) in &p.replication {
            f.lag_seconds.with_label_values(&[replica]).set(*seconds);
            if let Some(bytes) = bytes {
                f.lag_bytes.with_label_values(&[replica]).set(*bytes);
            }
        }
        for c in [
            Box::new(f.info.clone()) as Box<dyn Collector>,
            Box::new(f.max_connections.clone()),
            Box::new(f.active.clone()),
            Box::new(f.idle.clone()),
            Box::new(f.total.clone()),
            Box::new(f.table_size.clone()),
            Box::new(f.table_rows.clone()),
            Box::new(f.index_size.clone()),
            Box::new(f.lag_seconds.clone()),
            Box::new(f.lag_bytes.clone()),
        ] {
            registry.register(c)?;
        }
    }
    Ok(registry.gather())
}

/// Serves the latest published snapshot.
pub struct SnapshotCollector {
    descs: Vec<Desc>,
    families: Arc<Mutex<Vec<MetricFamily>>>,
}

impl Collector for SnapshotCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.families
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
