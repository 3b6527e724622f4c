//! Client-side series: what the harness itself measured, per namespace and operation.
//!
//! | Series | Type | Labels |
//! | --- | --- | --- |
//! | `vector_search_duration_seconds` | histogram of response time (pool wait + query, failures included), 0.25 ms … 10 s | `namespace`, `operation` |
//! | `vector_search_queries_total` | counter (attempts, failed ones included) | `namespace`, `operation` |
//! | `vector_search_results_total` | counter (rows returned or written) | `namespace`, `operation` |
//! | `vector_search_errors_total` | counter | `namespace`, `operation`, `error_type` |
//! | `db_pool_wait_seconds` | histogram | `endpoint` |
//! | `db_pool_connections` | gauge, sampled at scrape | `endpoint`, `state` = `in_use`, `idle` |
//! | `db_pool_max_size`, `db_pool_pending` | gauges, sampled at scrape | `endpoint` |
//! | `vector_search_recall` | gauge (mean of the last samples) | `operation` |
//! | `vector_search_recall_samples_total` | counter | `operation` |
//!
//! The label `namespace` is the namespace the operation was issued for (a cross-namespace
//! search counts under the first of its namespaces: the user's own). Handles for every
//! namespace × operation are resolved when the load test starts ([`ClientMetrics::bind`]), so
//! recording is a few atomic adds, and the series exist (at zero) before the first query: a
//! rate of errors is 0, not absent, until an error happens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

use super::recall::RecallSampler;
use super::schedule::ScheduleCollector;
use crate::config::Workload;
use crate::db::pool::Pool;
use crate::db::target::Target;
use crate::db::Endpoints;
use crate::engine::arrivals::Schedule;
use crate::engine::operation::{Observer, Request};
use crate::engine::stats::Outcome;
use crate::workload::dataset::Dataset;
use crate::workload::failure::Failure;
use crate::workload::ops::{Hit, Op};

/// Latency buckets, seconds: sub-millisecond resolution for index scans, up to 10 s.
pub const LATENCY_BUCKETS: [f64; 15] = [
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Pool-wait buckets, seconds: an uncontended checkout takes microseconds; the default pool
/// timeout is 30 s.
pub const POOL_WAIT_BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Failure classes known in advance: their counters start at zero. `sqlstate_XX` classes are
/// created when they first happen.
const FIXED_FAILURES: [Failure; 4] = [
    Failure::PoolTimeout,
    Failure::ConnectionLost,
    Failure::StatementTimeout,
    Failure::Client,
];

/// `host:port` of an endpoint: the label value for pools and replicas (never credentials).
pub fn endpoint_label(target: &Target) -> String {
    format!("{}:{}", target.host(), target.port())
}

/// The client-side metric families, registered once per exporter.
pub struct ClientMetrics {
    duration: HistogramVec,
    queries: IntCounterVec,
    results: IntCounterVec,
    errors: IntCounterVec,
    pool_wait: HistogramVec,
    recall: GaugeVec,
    recall_samples: IntCounterVec,
    event_active: prometheus::IntGaugeVec,
    pools: Arc<PoolGauges>,
    schedule: super::schedule::Slot,
    // Every recall sample since the last `take_recall_mean`: sum and count.
    recall_tally: Mutex<(f64, u64)>,
    // Every recall sample since the last `take_recall_samples`, with when it was taken (at
    // most one a second: a few kB an hour).
    recall_samples_taken: Mutex<Vec<(std::time::Instant, Op, f64)>>,
}

impl ClientMetrics {
    /// Creates the families and registers them (and the pool gauges) in `registry`.
    pub fn register(registry: &Registry) -> Result<Arc<ClientMetrics>, prometheus::Error> {
        let by_op = ["namespace", "operation"];
        let metrics = ClientMetrics {
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "vector_search_duration_seconds",
                    "Response time of each operation: pool wait + query, failed attempts included",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &by_op,
            )?,
            queries: IntCounterVec::new(
                Opts::new(
                    "vector_search_queries_total",
                    "Operations attempted (succeeded or failed); throughput counts these",
                ),
                &by_op,
            )?,
            results: IntCounterVec::new(
                Opts::new(
                    "vector_search_results_total",
                    "Rows returned (reads) or written (writes) by successful operations",
                ),
                &by_op,
            )?,
            errors: IntCounterVec::new(
                Opts::new(
                    "vector_search_errors_total",
                    "Failed operations by class: pool_timeout, connection_lost, \
                     statement_timeout, sqlstate_XX, client",
                ),
                &["namespace", "operation", "error_type"],
            )?,
            pool_wait: HistogramVec::new(
                HistogramOpts::new(
                    "db_pool_wait_seconds",
                    "Time an operation waited for a pool connection",
                )
                .buckets(POOL_WAIT_BUCKETS.to_vec()),
                &["endpoint"],
            )?,
            recall: GaugeVec::new(
                Opts::new(
                    "vector_search_recall",
                    "Recall@k against exact ground truth: mean of the most recent samples",
                ),
                &["operation"],
            )?,
            recall_samples: IntCounterVec::new(
                Opts::new(
                    "vector_search_recall_samples_total",
                    "Searches whose recall was measured against exact ground truth",
                ),
                &["operation"],
            )?,
            event_active: prometheus::IntGaugeVec::new(
                Opts::new(
                    "event_active",
                    "1 while a scheduled maintenance event of the load test runs (VACUUM, REINDEX, …)",
                ),
                &["action"],
            )?,
            pools: Arc::new(PoolGauges::new()?),
            schedule: Arc::new(Mutex::new(None)),
            recall_tally: Mutex::new((0.0, 0)),
            recall_samples_taken: Mutex::new(Vec::new()),
        };
        let (schedule, slot) = ScheduleCollector::new()?;
        let metrics = ClientMetrics {
            schedule: slot,
            ..metrics
        };
        registry.register(Box::new(schedule))?;
        registry.register(Box::new(metrics.duration.clone()))?;
        registry.register(Box::new(metrics.queries.clone()))?;
        registry.register(Box::new(metrics.results.clone()))?;
        registry.register(Box::new(metrics.errors.clone()))?;
        registry.register(Box::new(metrics.pool_wait.clone()))?;
        registry.register(Box::new(metrics.recall.clone()))?;
        registry.register(Box::new(metrics.recall_samples.clone()))?;
        registry.register(Box::new(metrics.event_active.clone()))?;
        registry.register(Box::new(SharedCollector(metrics.pools.clone())))?;
        Ok(Arc::new(metrics))
    }

    /// `event_active{action}`: 1 while such an event runs.
    pub fn set_event_active(&self, action: &str, active: bool) {
        let gauge = self.event_active.with_label_values(&[action]);
        if active {
            gauge.inc();
        } else {
            gauge.dec();
        }
    }

    /// Sets `vector_search_recall{operation}`: the benchmark suite calls this with each
    /// benchmark's recall@k; under load, the sampler does.
    pub fn set_recall(&self, op: Op, recall: f64) {
        self.recall.with_label_values(&[op.name()]).set(recall);
    }

    /// Serves the open model's series from `schedule` (the load test's, while it runs and
    /// after).
    pub fn watch_schedule(&self, schedule: Arc<Schedule>) {
        *self.schedule.lock().unwrap_or_else(|p| p.into_inner()) = Some(schedule);
    }

    /// One recall sample taken under load.
    pub(crate) fn count_recall_sample(&self, op: Op, recall: f64) {
        self.recall_samples.with_label_values(&[op.name()]).inc();
        let mut tally = self.recall_tally.lock().unwrap_or_else(|p| p.into_inner());
        tally.0 += recall;
        tally.1 += 1;
        drop(tally);
        let mut taken = self
            .recall_samples_taken
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        taken.push((std::time::Instant::now(), op, recall));
    }

    /// The recall samples taken since the last call, as (seconds since `origin`, operation,
    /// recall).
    pub fn take_recall_samples(&self, origin: std::time::Instant) -> Vec<(f64, Op, f64)> {
        let mut taken = self
            .recall_samples_taken
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *taken)
            .into_iter()
            .map(|(at, op, r)| (at.saturating_duration_since(origin).as_secs_f64(), op, r))
            .collect()
    }

    /// The mean recall of the samples taken since the last call (None: none taken), for a
    /// run's objectives; starts a new tally.
    pub fn take_recall_mean(&self) -> Option<f64> {
        let mut tally = self.recall_tally.lock().unwrap_or_else(|p| p.into_inner());
        let (sum, n) = std::mem::take(&mut *tally);
        (n > 0).then(|| sum / n as f64)
    }

    /// Resolves the handles of every namespace × operation (creating the series at zero) and
    /// of the pools' wait histograms. `readers[i]` is the endpoint of reader pool `i`.
    pub fn bind(
        self: &Arc<Self>,
        namespaces: &[String],
        writer: &str,
        readers: &[String],
    ) -> Bound {
        let ops = namespaces
            .iter()
            .map(|ns| {
                let handles = Op::ALL.map(|op| OpHandles::new(self, ns, op));
                (ns.clone(), handles)
            })
            .collect();
        Bound {
            family: self.clone(),
            ops,
            writer_wait: self.pool_wait.with_label_values(&[writer]),
            reader_wait: readers
                .iter()
                .map(|r| self.pool_wait.with_label_values(&[r.as_str()]))
                .collect(),
        }
    }

    /// Everything the load test records into: bound handles, its pools sampled at scrape,
    /// and the recall sampler (on its own connection to the primary).
    pub fn for_load(
        self: &Arc<Self>,
        workload: &Workload,
        endpoints: &Endpoints,
        use_replicas: bool,
        dataset: &Dataset,
        writer: &Pool,
        readers: &[Pool],
    ) -> Arc<LoadMetrics> {
        let namespaces: Vec<String> = (0..dataset.namespace_count())
            .map(|i| dataset.namespace_name(i))
            .collect();
        let writer_label = endpoint_label(&endpoints.primary);
        let reader_labels: Vec<String> = if use_replicas {
            endpoints.replicas.iter().map(endpoint_label).collect()
        } else {
            vec![writer_label.clone(); readers.len()]
        };
        let mut tracked = vec![self.pools.track(&writer_label, writer)];
        if use_replicas {
            for (label, pool) in reader_labels.iter().zip(readers) {
                tracked.push(self.pools.track(label, pool));
            }
        }
        let bound = self.bind(&namespaces, &writer_label, &reader_labels);
        let sampler = RecallSampler::spawn(endpoints.primary.clone(), workload, self.clone());
        Arc::new(LoadMetrics {
            bound,
            sampler,
            tracked,
        })
    }
}

/// Handles of one namespace × operation.
struct OpHandles {
    duration: Histogram,
    queries: IntCounter,
    results: IntCounter,
    errors: [IntCounter; FIXED_FAILURES.len()],
}

impl OpHandles {
    fn new(m: &ClientMetrics, namespace: &str, op: Op) -> OpHandles {
        let labels = [namespace, op.name()];
        OpHandles {
            duration: m.duration.with_label_values(&labels),
            queries: m.queries.with_label_values(&labels),
            results: m.results.with_label_values(&labels),
            errors: FIXED_FAILURES.map(|f| {
                m.errors
                    .with_label_values(&[namespace, op.name(), &f.label()])
            }),
        }
    }
}

/// Resolved handles: recording takes no lock (except for a first-seen SQLSTATE class).
pub struct Bound {
    family: Arc<ClientMetrics>,
    ops: HashMap<String, [OpHandles; Op::COUNT]>,
    writer_wait: Histogram,
    reader_wait: Vec<Histogram>,
}

impl Bound {
    /// Records one operation issued for `namespace` through reader pool `reader` (writes use
    /// the writer pool).
    pub fn record(&self, namespace: &str, reader: usize, op: Op, outcome: &Outcome) {
        let wait = if matches!(op, Op::Insert | Op::BulkInsert) {
            Some(&self.writer_wait)
        } else {
            self.reader_wait.get(reader)
        };
        if let Some(wait) = wait {
            wait.observe(outcome.pool_wait.as_secs_f64());
        }
        let Some(h) = self.ops.get(namespace).map(|all| &all[op.index()]) else {
            // A namespace outside the dataset (never in the load test): the slow path.
            let slow = OpHandles::new(&self.family, namespace, op);
            return record_into(&slow, &self.family, namespace, op, outcome);
        };
        record_into(h, &self.family, namespace, op, outcome);
    }
}

fn record_into(h: &OpHandles, m: &ClientMetrics, namespace: &str, op: Op, outcome: &Outcome) {
    h.queries.inc();
    // Response time, as every report has it: pool wait included, failures too.
    h.duration.observe(outcome.response().as_secs_f64());
    match &outcome.result {
        Ok(rows) => h.results.inc_by(*rows),
        Err(failure) => match FIXED_FAILURES.iter().position(|f| f == failure) {
            Some(i) => h.errors[i].inc(),
            None => m
                .errors
                .with_label_values(&[namespace, op.name(), &failure.label()])
                .inc(),
        },
    }
}

/// What the load test's users record into.
pub struct LoadMetrics {
    bound: Bound,
    sampler: RecallSampler,
    tracked: Vec<u64>,
}

impl Observer for LoadMetrics {
    /// Records one operation and offers successful searches to the recall sampler.
    fn observe(&self, request: &Request, reader: usize, op: Op, outcome: &Outcome, hits: &[Hit]) {
        let namespace = match request {
            Request::Single { namespace, .. }
            | Request::Filtered { namespace, .. }
            | Request::Retrieve { namespace, .. } => namespace.as_str(),
            Request::Cross { namespaces, .. } => {
                namespaces.first().map(String::as_str).unwrap_or_default()
            }
            Request::Write(rows) => rows
                .first()
                .map(|r| r.namespace.as_str())
                .unwrap_or_default(),
        };
        self.bound.record(namespace, reader, op, outcome);
        if outcome.result.is_ok() {
            self.sampler.offer(request, hits);
        }
    }
}

impl Drop for LoadMetrics {
    fn drop(&mut self) {
        // The pools close when the load test ends; their gauges must not outlive them.
        for id in &self.tracked {
            self.bound.family.pools.untrack(*id);
        }
    }
}

struct TrackedPool {
    id: u64,
    endpoint: String,
    pool: Pool,
    max_size: u32,
}

/// `db_pool_*` gauges, read from the pools' own state at scrape time.
struct PoolGauges {
    descs: Vec<Desc>,
    pools: Mutex<Vec<TrackedPool>>,
    next_id: AtomicU64,
}

impl PoolGauges {
    fn new() -> Result<PoolGauges, prometheus::Error> {
        let (connections, max_size, pending) = Self::families()?;
        let descs = [connections.desc(), max_size.desc(), pending.desc()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        Ok(PoolGauges {
            descs,
            pools: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        })
    }

    fn families() -> Result<(GaugeVec, GaugeVec, GaugeVec), prometheus::Error> {
        Ok((
            GaugeVec::new(
                Opts::new(
                    "db_pool_connections",
                    "Connections of the harness's pool, by state (in_use, idle)",
                ),
                &["endpoint", "state"],
            )?,
            GaugeVec::new(
                Opts::new("db_pool_max_size", "Most connections the pool may open"),
                &["endpoint"],
            )?,
            GaugeVec::new(
                Opts::new(
                    "db_pool_pending",
                    "Operations waiting for a pool connection right now",
                ),
                &["endpoint"],
            )?,
        ))
    }

    /// Two pools to one endpoint (never in the load test) would report under one label: the
    /// first one tracked wins.
    fn track(&self, endpoint: &str, pool: &Pool) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if !pools.iter().any(|p| p.endpoint == endpoint) {
            pools.push(TrackedPool {
                id,
                endpoint: endpoint.to_string(),
                pool: pool.clone(),
                max_size: pool.max_size(),
            });
        }
        id
    }

    fn untrack(&self, id: u64) {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools.retain(|p| p.id != id);
    }

    fn collect_now(&self) -> Vec<MetricFamily> {
        let Ok((connections, max_size, pending)) = Self::families() else {
            return Vec::new();
        };
        let pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        for p in pools.iter() {
            let state = p.pool.state();
            let idle = state.idle_connections as f64;
            let in_use = state.connections.saturating_sub(state.idle_connections) as f64;
            let e = p.endpoint.as_str();
            connections.with_label_values(&[e, "in_use"]).set(in_use);
            connections.with_label_values(&[e, "idle"]).set(idle);
            max_size.with_label_values(&[e]).set(p.max_size as f64);
            pending
                .with_label_values(&[e])
                .set(state.statistics.pending_gets() as f64);
        }
        [connections.collect(), max_size.collect(), pending.collect()]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Registers an `Arc`'d collector (the registry takes a `Box`).
struct SharedCollector(Arc<PoolGauges>);

impl Collector for SharedCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect_now()
    }
}
