//! Server-side figures a profile's objectives may name, gathered beside the load test by the
//! exporter's own poller (one implementation, one set of queries): the buffer cache hit ratio
//! over the run (a delta of `pg_stat_database`, not the cumulative ratio since the last stats
//! reset), the largest replica replay lag, and the peak pool usage.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::db::pool::Pool;
use crate::db::target::Target;
use crate::metrics::server::{interval_hit_ratio, Poller, Snapshot};
use crate::report::verdict::ServerFigures;

/// Polls the primary when the load begins, every second until `stop`, and once more at the
/// end; reads the pools' peak usage at the end, and each second the busiest pool's peak since
/// the previous second (seconds since `origin`, percent).
pub async fn watch(
    primary: Target,
    pools: Vec<Pool>,
    pool_size: u32,
    origin: Instant,
    stop: CancellationToken,
) -> Watched {
    let mut poller = Poller::vitals(primary);
    let mut seen = Seen::default();
    let mut usage = Vec::new();
    let mut lag = Vec::new();
    let pct = |in_use: u32| in_use as f64 * 100.0 / pool_size.max(1) as f64;
    loop {
        tokio::select! {
            snapshot = poller.poll() => {
                let now = origin.elapsed().as_secs_f64();
                lag.extend(seen.add(&snapshot).map(|l| (now, l)));
            }
            _ = stop.cancelled() => break,
        }
        let busiest = pools.iter().map(Pool::take_recent_peak).max().unwrap_or(0);
        usage.push((origin.elapsed().as_secs_f64(), pct(busiest)));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.cancelled() => break,
        }
    }
    seen.add(&poller.poll().await);
    // Pools track their peak at every checkout: a one-second sample would miss spikes.
    let peak_in_use = pools.iter().map(Pool::peak_in_use).max().unwrap_or(0);
    let figures = ServerFigures {
        pool_usage_pct: Some(pct(peak_in_use)),
        cache_hit_ratio_pct: seen
            .first_blocks
            .zip(seen.last_blocks)
            .and_then(|(first, last)| interval_hit_ratio(first, last))
            .map(|ratio| ratio * 100.0),
        replication_lag_s: seen.max_lag,
        recall_mean: None,
        visibility_p95_ms: None,
    };
    Watched {
        figures,
        pool_usage_pct: usage,
        replication_lag_s: lag,
    }
}

/// What the watch saw: the figures of the run, and each second's pool usage and replica lag.
#[derive(Default)]
pub struct Watched {
    /// Over the run.
    pub figures: ServerFigures,
    /// (seconds since the start, busiest pool's peak %).
    pub pool_usage_pct: Vec<(f64, f64)>,
    /// (seconds since the start, largest replay lag).
    pub replication_lag_s: Vec<(f64, f64)>,
}

/// What the polls so far showed.
#[derive(Default)]
struct Seen {
    first_blocks: Option<(i64, i64)>,
    last_blocks: Option<(i64, i64)>,
    max_lag: Option<f64>,
}

impl Seen {
    /// Adds a poll; returns its largest replica lag, if a replica is attached.
    fn add(&mut self, snapshot: &Snapshot) -> Option<f64> {
        let Some(state) = &snapshot.primary else {
            return None;
        };
        self.first_blocks.get_or_insert(state.blocks);
        self.last_blocks = Some(state.blocks);
        // No replica attached: no lag to speak of (not a lag of 0).
        let mut now: Option<f64> = None;
        for &(_, lag, _) in &state.replication {
            self.max_lag = Some(self.max_lag.unwrap_or(0.0).max(lag));
            now = Some(now.unwrap_or(0.0).max(lag));
        }
        now
    }
}
