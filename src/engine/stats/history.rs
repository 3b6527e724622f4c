//! The once-a-second history (Locust's `stats_history.csv`): what happened since the previous
//! sample, per operation and in total, taken from the response times the users hand the
//! sampler rather than by merging every shard's histograms.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::*;

/// The percentiles Locust reports (50 … 100), which the history keeps per sample.
pub const QUANTILES: [f64; 11] = [
    50.0, 66.0, 75.0, 80.0, 90.0, 95.0, 98.0, 99.0, 99.9, 99.99, 100.0,
];

/// One operation's (or the aggregate's) figures at one sample: numbers only, so the history
/// costs a few hundred bytes per second however long the run is.
#[derive(Debug, Clone, Default)]
pub struct HistoryRow {
    /// Attempts during the interval.
    pub count: u64,
    /// Failures during the interval.
    pub failed: u64,
    /// Bytes of result rows received during the interval.
    pub bytes: u64,
    /// Latency percentiles over the interval ([`QUANTILES`]), µs; None when nothing ran.
    pub percentiles: Option<[u64; 11]>,
    /// Attempts since the start.
    pub total_count: u64,
    /// Failures since the start.
    pub total_failed: u64,
    /// Median since the start, µs.
    pub total_median: u64,
    /// Mean since the start, µs.
    pub total_mean: f64,
    /// Minimum since the start, µs.
    pub total_min: u64,
    /// Maximum since the start, µs.
    pub total_max: u64,
    /// Mean bytes of result rows per attempt since the start.
    pub total_mean_bytes: f64,
}

impl HistoryRow {
    /// A row from the interval's response times and counts, and those since the start.
    pub fn new(
        interval: &Histogram<u64>,
        counted: Counts,
        t: &Histogram<u64>,
        total: Counts,
    ) -> Self {
        let mut percentiles = [0; 11];
        // One pass over the counts for all of them, with value_at_percentile's results.
        for (p, v) in percentiles
            .iter_mut()
            .zip(interval.value_at_percentiles(QUANTILES))
        {
            *p = v;
        }
        HistoryRow {
            count: counted.count,
            failed: counted.failed,
            bytes: counted.bytes,
            percentiles: (!interval.is_empty()).then_some(percentiles),
            total_count: total.count,
            total_failed: total.failed,
            total_median: if t.is_empty() {
                0
            } else {
                t.value_at_quantile(0.5)
            },
            total_mean: t.mean(),
            total_min: if t.is_empty() { 0 } else { t.min() },
            total_max: t.max(),
            total_mean_bytes: total.bytes as f64 / total.count.max(1) as f64,
        }
    }
}

/// Attempts, failures and bytes of one operation (or all), for the history.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Attempts.
    pub count: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Bytes of result rows received.
    pub bytes: u64,
}

impl Counts {
    /// Adds `other`.
    pub fn add(&mut self, other: Counts) {
        self.count += other.count;
        self.failed += other.failed;
        self.bytes += other.bytes;
    }

    fn since(self, earlier: Counts) -> Counts {
        Counts {
            count: self.count - earlier.count,
            failed: self.failed - earlier.failed,
            bytes: self.bytes - earlier.bytes,
        }
    }
}

/// One sample of the run's progress, for `load_test_stats_history.csv`.
#[derive(Debug, Clone)]
pub struct HistorySample {
    /// Unix time of the sample, seconds.
    pub unix_time: u64,
    /// Users running at that moment.
    pub users: usize,
    /// Length of the interval this sample covers.
    pub interval: Duration,
    /// Per operation that has run so far (by [`Op::ALL`] order), then the aggregate.
    pub rows: Vec<(Option<Op>, HistoryRow)>,
    /// The interval's response times of each operation that finished something, as
    /// HdrHistogram V2 deflate bytes (a few hundred bytes each): `history.hlog`'s intervals.
    pub encoded: Vec<(Op, Vec<u8>)>,
}

/// What the report charts over time besides the history, as (seconds since the history's start,
/// value): the busiest pool's usage and the recall samples taken under load.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Peak share of the busiest pool in use during each second, percent.
    pub pool_usage_pct: Vec<(f64, f64)>,
    /// Each recall@k sample: its operation and its recall.
    pub recall: Vec<(f64, Op, f64)>,
    /// The largest replica replay lag at each poll of the primary, seconds.
    pub replication_lag_s: Vec<(f64, f64)>,
}

/// The history between samples: [`HistorySampler::sample`] reports what happened since the
/// previous sample, and the totals. One sampler per hub at a time: it takes the response times
/// the users record while it lives.
pub struct HistorySampler {
    hub: Arc<StatsHub>,
    // By operation ([`Op::index`]), then all operations: response times since the last sample
    // and since the start, and the counts at the last sample.
    interval: [Histogram<u64>; ALL + 1],
    total: [Histogram<u64>; ALL + 1],
    previous: [Counts; ALL + 1],
    taken: [Vec<u32>; ALL],
    previous_at: Instant,
}

/// The aggregate's index, after every operation's.
const ALL: usize = Op::COUNT;

impl HistorySampler {
    /// Starts the history of `hub` at what it holds now.
    pub fn new(hub: Arc<StatsHub>) -> HistorySampler {
        let mut total: [Histogram<u64>; ALL + 1] = std::array::from_fn(|_| histogram());
        let mut previous = [Counts::default(); ALL + 1];
        // From now on users keep their response times for us; what each shard holds when we
        // lock it is in its histograms, so it is counted there and its list is dropped.
        hub.sampled.store(true, Ordering::Relaxed);
        for shard in &hub.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for i in 0..ALL {
                let stats = &shard.stats.ops[i];
                for t in [i, ALL] {
                    total[t].add(&stats.latency).expect("same histogram bounds");
                    previous[t].add(counts(stats));
                }
                shard.fresh[i].clear();
            }
        }
        HistorySampler {
            interval: std::array::from_fn(|_| histogram()),
            total,
            previous,
            taken: Default::default(),
            previous_at: Instant::now(),
            hub,
        }
    }

    /// One sample: every operation that has run so far, then the aggregate.
    pub fn sample(&mut self) -> HistorySample {
        let mut now = [Counts::default(); ALL + 1];
        for shard in &self.hub.shards {
            let shard = &mut *shard.lock().unwrap_or_else(|p| p.into_inner());
            for (i, fresh) in shard.fresh.iter_mut().enumerate() {
                now[i].add(counts(&shard.stats.ops[i]));
                self.taken[i].extend_from_slice(fresh);
                fresh.clear();
            }
        }
        for i in 0..ALL {
            let all = now[i];
            now[ALL].add(all);
            for &us in &self.taken[i] {
                for t in [i, ALL] {
                    self.interval[t].saturating_record(us as u64);
                    self.total[t].saturating_record(us as u64);
                }
            }
            self.taken[i].clear();
        }
        let row = |t: usize| {
            let since = now[t].since(self.previous[t]);
            HistoryRow::new(&self.interval[t], since, &self.total[t], now[t])
        };
        let mut rows: Vec<(Option<Op>, HistoryRow)> = Op::ALL
            .iter()
            .filter(|op| now[op.index()].count > 0)
            .map(|op| (Some(*op), row(op.index())))
            .collect();
        rows.push((None, row(ALL)));
        let encoded = Op::ALL
            .iter()
            .filter(|op| !self.interval[op.index()].is_empty())
            .filter_map(|op| Some((*op, super::hlog::encode(&self.interval[op.index()])?)))
            .collect();
        let sample = HistorySample {
            unix_time: unix_now(),
            users: self.hub.users(),
            interval: self.previous_at.elapsed(),
            rows,
            encoded,
        };
        for h in self.interval.iter_mut().filter(|h| !h.is_empty()) {
            h.reset();
        }
        self.previous = now;
        self.previous_at = Instant::now();
        sample
    }
}

impl Drop for HistorySampler {
    fn drop(&mut self) {
        self.hub.sampled.store(false, Ordering::Relaxed);
        for shard in &self.hub.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.fresh = Default::default();
        }
    }
}

fn counts(stats: &OpStats) -> Counts {
    Counts {
        count: stats.count(),
        failed: stats.failed,
        bytes: stats.bytes,
    }
}

/// Samples the hub every `every` until `stop` fires, handing each sample to `on_sample` (then
/// `None` at the end); returns the samples.
pub async fn sample_history(
    hub: Arc<StatsHub>,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
    mut on_sample: impl FnMut(Option<&HistorySample>) + Send,
) -> Vec<HistorySample> {
    let mut samples = Vec::new();
    let mut sampler = HistorySampler::new(hub);
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        let done = tokio::select! {
            _ = ticker.tick() => false,
            _ = stop.cancelled() => true,
        };
        samples.push(sampler.sample());
        on_sample(samples.last());
        if done {
            on_sample(None);
            return samples;
        }
    }
}
