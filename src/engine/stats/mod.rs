//! Our own measurements, in microseconds, beside Goose's: per-operation HDR histograms of
//! response time (pool wait + query: what the application sees), service time (the query
//! alone) and pool wait, row and byte counts, short result sets and failures by class.
//!
//! Users record into shards chosen by user index (`user % shards`), each behind its own lock
//! held only for the few µs of a record. Users that share a shard (the load test has 16: with
//! 1,000 users, about 63 share each) and the once-a-second history sampler may wait on one
//! another for that long, never for a query.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use crate::workload::failure::Failure;
use crate::workload::ops::Op;

/// Largest latency a histogram holds exactly (1 hour, in µs); longer ones saturate.
const MAX_MICROS: u64 = 3_600_000_000;

/// An empty µs histogram with the bounds every one of ours has (1 µs to 1 hour, three
/// significant digits), so any two of them add exactly.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("static histogram bounds")
}

/// `x` rounded to `digits` decimals, for reports.
pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// What one operation did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Open model: from the intended start to the moment the operation began (zero in the
    /// closed model, where an operation starts when it is called).
    pub schedule_lag: Duration,
    /// Time spent waiting for a pool connection (the whole attempt when none came).
    pub pool_wait: Duration,
    /// Service time: the query alone, after the connection was in hand; `None` when the
    /// operation never reached the server (no connection).
    pub service: Option<Duration>,
    /// Rows returned or written, or why it failed.
    pub result: Result<u64, Failure>,
    /// For searches: fewer than k rows came back.
    pub short: bool,
    /// Bytes of the result rows received (column values as sent on the wire).
    pub bytes: u64,
    /// For searches: how many distinct namespaces the rows came from (0: no rows, or not a
    /// search).
    pub namespaces: u32,
}

impl Outcome {
    /// An operation that never reached the server: no connection came within `waited`.
    pub fn not_served(waited: Duration, failure: Failure) -> Outcome {
        Outcome {
            schedule_lag: Duration::ZERO,
            pool_wait: waited,
            service: None,
            result: Err(failure),
            short: false,
            bytes: 0,
            namespaces: 0,
        }
    }

    /// Response time: what the caller of the database saw, from the intended start (open
    /// model) or the call: schedule lag + pool wait + query. A failed operation has one too.
    pub fn response(&self) -> Duration {
        self.schedule_lag + self.pool_wait + self.service.unwrap_or_default()
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().clamp(1, MAX_MICROS as u128) as u64
}

/// When a failure class was counted, and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FailureCount {
    /// Occurrences.
    pub count: u64,
    /// Unix time of the first, seconds.
    pub first_seen: u64,
    /// Unix time of the last, seconds.
    pub last_seen: u64,
}

impl FailureCount {
    fn merge(&mut self, other: &FailureCount) {
        self.count += other.count;
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Statistics of one operation (or of all of them, aggregated). Serialised (in a generator's
/// `worker.json`) without its histograms, which go to HdrHistogram interval logs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OpStats {
    /// Response time (pool wait + query) of every attempt, failed ones included (as Locust
    /// counts them), µs: the headline latency of every report.
    #[serde(skip, default = "histogram")]
    pub latency: Histogram<u64>,
    /// Service time (the query alone) of every attempt that reached the server, µs.
    #[serde(skip, default = "histogram")]
    pub service: Histogram<u64>,
    /// Pool wait of every attempt, µs.
    #[serde(skip, default = "histogram")]
    pub pool_wait: Histogram<u64>,
    /// Attempts that succeeded.
    pub ok: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Rows returned (reads) or written (writes) by successful attempts.
    pub rows: u64,
    /// Successful searches that returned fewer than k rows.
    pub short: u64,
    /// Successful attempts that returned no row at all.
    pub empty: u64,
    /// Bytes of result rows received, all attempts.
    pub bytes: u64,
    /// Distinct namespaces among each successful search's rows, summed (divide by the
    /// searches that returned rows, `ok - empty`, for the mean).
    pub namespaces: u64,
    /// Failures by class label.
    pub failures: BTreeMap<String, FailureCount>,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats {
            latency: histogram(),
            service: histogram(),
            pool_wait: histogram(),
            ok: 0,
            failed: 0,
            rows: 0,
            short: 0,
            empty: 0,
            bytes: 0,
            namespaces: 0,
            failures: BTreeMap::new(),
        }
    }
}

impl OpStats {
    /// Mean number of distinct namespaces among the rows of a search that returned rows
    /// (None when none did): 1 for a single-namespace search; for a cross-namespace search,
    /// how far its top k really merges partitions.
    pub fn mean_distinct_namespaces(&self) -> Option<f64> {
        let with_rows = self.ok.saturating_sub(self.empty);
        (with_rows > 0 && self.namespaces > 0).then(|| self.namespaces as f64 / with_rows as f64)
    }

    /// Attempts, successful or not.
    pub fn count(&self) -> u64 {
        self.ok + self.failed
    }

    /// Mean bytes of result rows per attempt (Locust's "Average Content Size").
    pub fn mean_bytes(&self) -> f64 {
        self.bytes as f64 / self.count().max(1) as f64
    }

    /// Failure counts by class, without the times.
    pub fn failure_counts(&self) -> BTreeMap<String, u64> {
        self.failures
            .iter()
            .map(|(k, v)| (k.clone(), v.count))
            .collect()
    }

    fn record(&mut self, outcome: &Outcome) {
        self.latency.saturating_record(micros(outcome.response()));
        if let Some(service) = outcome.service {
            self.service.saturating_record(micros(service));
        }
        self.pool_wait.saturating_record(micros(outcome.pool_wait));
        self.bytes += outcome.bytes;
        match &outcome.result {
            Ok(rows) => {
                self.ok += 1;
                self.rows += rows;
                self.short += outcome.short as u64;
                self.empty += (*rows == 0) as u64;
                self.namespaces += u64::from(outcome.namespaces);
            }
            Err(failure) => {
                self.failed += 1;
                let now = unix_now();
                let seen = FailureCount {
                    count: 1,
                    first_seen: now,
                    last_seen: now,
                };
                self.failures
                    .entry(failure.label())
                    .and_modify(|f| f.merge(&seen))
                    .or_insert(seen);
            }
        }
    }

    /// Adds another's counts and histograms into this one.
    pub fn merge(&mut self, other: &OpStats) {
        self.latency
            .add(&other.latency)
            .expect("same histogram bounds");
        self.service
            .add(&other.service)
            .expect("same histogram bounds");
        self.pool_wait
            .add(&other.pool_wait)
            .expect("same histogram bounds");
        self.ok += other.ok;
        self.failed += other.failed;
        self.rows += other.rows;
        self.short += other.short;
        self.empty += other.empty;
        self.bytes += other.bytes;
        self.namespaces += other.namespaces;
        for (k, v) in &other.failures {
            self.failures
                .entry(k.clone())
                .and_modify(|f| f.merge(v))
                .or_insert(*v);
        }
    }

    /// What happened since `earlier` (a snapshot of the same stats taken before).
    pub fn since(&self, earlier: &OpStats) -> OpStats {
        let mut latency = self.latency.clone();
        // Histograms only grow, so the subtraction cannot underflow.
        let _ = latency.subtract(&earlier.latency);
        let mut service = self.service.clone();
        let _ = service.subtract(&earlier.service);
        let mut pool_wait = self.pool_wait.clone();
        let _ = pool_wait.subtract(&earlier.pool_wait);
        OpStats {
            latency,
            service,
            pool_wait,
            ok: self.ok - earlier.ok,
            failed: self.failed - earlier.failed,
            rows: self.rows - earlier.rows,
            short: self.short - earlier.short,
            empty: self.empty - earlier.empty,
            bytes: self.bytes - earlier.bytes,
            namespaces: self.namespaces - earlier.namespaces,
            failures: BTreeMap::new(),
        }
    }
}

/// Statistics of every operation.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Indexed by [`Op::index`].
    pub ops: [OpStats; Op::COUNT],
}

impl Snapshot {
    /// One operation's statistics.
    pub fn op(&self, op: Op) -> &OpStats {
        &self.ops[op.index()]
    }

    /// All operations merged (Locust's "Aggregated" row).
    pub fn aggregated(&self) -> OpStats {
        let mut all = OpStats::default();
        for s in &self.ops {
            all.merge(s);
        }
        all
    }

    fn merge(&mut self, other: &Snapshot) {
        for (a, b) in self.ops.iter_mut().zip(other.ops.iter()) {
            a.merge(b);
        }
    }
}

/// One shard: what its users recorded and, while a [`HistorySampler`] runs, the response times
/// (µs, by operation) it has not taken yet. The sampler takes those instead of merging every
/// shard's histograms (23,552 counters each) every second.
#[derive(Default)]
struct Shard {
    stats: Snapshot,
    fresh: [Vec<u32>; Op::COUNT],
}

/// The shared recorder.
pub struct StatsHub {
    shards: Vec<Mutex<Shard>>,
    sampled: AtomicBool,
    users: AtomicUsize,
    started: Instant,
    // µs since `started` of the first operation's start and the last one's end: the span over
    // which throughput is measured.
    first_start_us: AtomicU64,
    last_end_us: AtomicU64,
    // µs since `started` when the last user stopped (0: not yet).
    all_stopped_us: AtomicU64,
}

impl StatsHub {
    /// A recorder with `shards` independent shards (one per expected concurrent user is
    /// ideal; 64 is plenty on a few cores).
    pub fn new(shards: usize) -> Arc<StatsHub> {
        Arc::new(StatsHub {
            shards: (0..shards.clamp(1, 256))
                .map(|_| Mutex::new(Shard::default()))
                .collect(),
            sampled: AtomicBool::new(false),
            users: AtomicUsize::new(0),
            started: Instant::now(),
            first_start_us: AtomicU64::new(u64::MAX),
            last_end_us: AtomicU64::new(0),
            all_stopped_us: AtomicU64::new(0),
        })
    }

    /// Records one operation from user `user`.
    pub fn record(&self, user: usize, op: Op, outcome: &Outcome) {
        let end = self.started.elapsed();
        let start = end.saturating_sub(outcome.response());
        self.first_start_us
            .fetch_min(start.as_micros() as u64, Ordering::Relaxed);
        self.last_end_us
            .fetch_max(end.as_micros() as u64, Ordering::Relaxed);
        let shard = &self.shards[user % self.shards.len()];
        let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
        shard.stats.ops[op.index()].record(outcome);
        // Read under the lock, so the sampler's start sees each operation exactly once.
        if self.sampled.load(Ordering::Relaxed) {
            shard.fresh[op.index()].push(micros(outcome.response()) as u32);
        }
    }

    /// Everything recorded so far, merged.
    pub fn snapshot(&self) -> Snapshot {
        let mut all = Snapshot::default();
        for shard in &self.shards {
            all.merge(&shard.lock().unwrap_or_else(|p| p.into_inner()).stats);
        }
        all
    }

    /// A user started.
    pub fn user_started(&self) {
        self.users.fetch_add(1, Ordering::Relaxed);
    }

    /// A user stopped.
    pub fn user_stopped(&self) {
        if self.users.fetch_sub(1, Ordering::Relaxed) == 1 {
            let at = self.started.elapsed().as_micros() as u64;
            self.all_stopped_us.store(at, Ordering::Relaxed);
        }
    }

    /// When the last running user stopped, if all have.
    pub fn all_stopped_at(&self) -> Option<Instant> {
        match self.all_stopped_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(self.started + Duration::from_micros(us)),
        }
    }

    /// Users running now.
    pub fn users(&self) -> usize {
        self.users.load(Ordering::Relaxed)
    }

    /// Wall-clock time from the first operation's start to the last one's end.
    pub fn active_span(&self) -> Duration {
        let first = self.first_start_us.load(Ordering::Relaxed);
        let last = self.last_end_us.load(Ordering::Relaxed);
        Duration::from_micros(last.saturating_sub(first.min(last)))
    }

    /// When the recorder was created.
    pub fn started(&self) -> Instant {
        self.started
    }
}

mod history;
pub mod hlog;

pub use history::{
    sample_history, Counts, HistoryRow, HistorySample, HistorySampler, Timeline, QUANTILES,
};

#[cfg(test)]
mod tests;
