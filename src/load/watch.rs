//! Server-side figures a profile's objectives may name, gathered beside the load test: the
//! buffer cache hit ratio over the run (a delta of `pg_stat_database`, not the cumulative
//! ratio since the last stats reset), the largest replica replay lag, and the peak pool usage.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::db::pool::Pool;
use crate::db::target::Target;
use crate::report::verdict::ServerFigures;

const BLOCKS: &str =
    "SELECT coalesce(sum(blks_hit), 0)::float8, coalesce(sum(blks_read), 0)::float8 \
     FROM pg_stat_database WHERE datname = current_database()";
const LAG: &str = "SELECT coalesce(max(extract(epoch FROM replay_lag)), 0)::float8, count(*) \
     FROM pg_stat_replication";

/// Samples replication lag every second until `stop`, the cache counters at both ends, and
/// the pools' peak usage at the end.
pub async fn watch(
    primary: Target,
    pools: Vec<Pool>,
    pool_size: u32,
    stop: CancellationToken,
) -> ServerFigures {
    let client = primary.connect().await.ok();
    let blocks = |row: tokio_postgres::Row| (row.get::<_, f64>(0), row.get::<_, f64>(1));
    let before = match &client {
        Some(c) => c.query_one(BLOCKS, &[]).await.ok().map(blocks),
        None => None,
    };
    let mut figures = ServerFigures::default();
    loop {
        if let Some(c) = &client {
            if let Ok(row) = c.query_one(LAG, &[]).await {
                let (lag, replicas): (f64, i64) = (row.get(0), row.get(1));
                if replicas > 0 {
                    let seen = figures.replication_lag_s.unwrap_or(0.0);
                    figures.replication_lag_s = Some(seen.max(lag));
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.cancelled() => break,
        }
    }
    // Pools track their peak at every checkout: a one-second sample would miss spikes.
    let peak_in_use = pools.iter().map(Pool::peak_in_use).max().unwrap_or(0);
    figures.pool_usage_pct = Some(peak_in_use as f64 * 100.0 / pool_size.max(1) as f64);
    if let (Some(c), Some((hit0, read0))) = (&client, before) {
        if let Ok((hit1, read1)) = c.query_one(BLOCKS, &[]).await.map(blocks) {
            let (hit, read) = (hit1 - hit0, read1 - read0);
            if hit + read > 0.0 {
                figures.cache_hit_ratio_pct = Some(hit * 100.0 / (hit + read));
            }
        }
    }
    figures
}
