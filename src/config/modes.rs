//! The validated settings of each mode beside the load test: `bench`, `calibrate` and the
//! Prometheus exporter.

use std::time::Duration;

use super::{bad, ConfigError, Mode};
use crate::cli::Benchmark;

/// Which benchmarks run, and how many iterations each.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchSettings {
    /// Single-namespace search iterations (0 = skipped).
    pub single: usize,
    /// Cross-namespace search iterations (0 = skipped).
    pub cross: usize,
    /// Data set benchmark iterations (0 = skipped; also when the data has no ground truth).
    pub dataset: usize,
    /// Filtered search iterations at each selectivity (0 = skipped).
    pub filtered: usize,
    /// Concurrent benchmark clients (0 = skipped).
    pub concurrent_clients: usize,
    /// Queries per concurrent client.
    pub concurrent_queries: usize,
    /// Bulk insert batches (0 = skipped).
    pub bulk_batches: usize,
    /// Rows per bulk batch.
    pub bulk_rows: usize,
    /// Warm-up iterations before each benchmark.
    pub warmup: usize,
    /// Every `hnsw.ef_search` the search benchmarks measure (the first is the session's).
    pub ef_search: Vec<u32>,
    /// Every `ivfflat.probes` they measure on an IVFFlat index (the first is the session's).
    pub probes: Vec<u32>,
    /// Every `hnsw.iterative_scan` mode they measure (the first is the session's).
    pub iterative_scan: Vec<String>,
    /// Every filter selectivity the filtered search measures.
    pub filter_selectivity: Vec<f64>,
}

pub(super) fn bench_settings(
    args: crate::cli::BenchArgs,
    ef_search: Vec<u32>,
    probes: Vec<u32>,
    iterative_scan: Vec<String>,
    filter_selectivity: Vec<f64>,
) -> Result<BenchSettings, ConfigError> {
    let on = |benchmark: Benchmark, n: usize| {
        if args.only.contains(&benchmark) {
            n
        } else {
            0
        }
    };
    let scale = |n: usize| if args.quick { (n / 10).max(5) } else { n };
    if args.bulk_rows == 0 || args.concurrent_queries == 0 {
        return Err(bad(
            "--bulk-rows and --concurrent-queries must be at least 1",
        ));
    }
    Ok(BenchSettings {
        single: on(Benchmark::Single, scale(args.single_iterations)),
        cross: on(Benchmark::Cross, scale(args.cross_iterations)),
        dataset: on(Benchmark::Dataset, scale(args.dataset_iterations)),
        filtered: on(Benchmark::Filtered, scale(args.filtered_iterations)),
        // Not scaled: fewer clients could not open the connections the target counts.
        concurrent_clients: on(Benchmark::Concurrent, args.concurrent_clients),
        concurrent_queries: scale(args.concurrent_queries),
        bulk_batches: on(Benchmark::Bulk, scale(args.bulk_batches)),
        bulk_rows: args.bulk_rows,
        warmup: if args.quick {
            (args.warmup / 10).max(5)
        } else {
            args.warmup
        },
        ef_search,
        probes,
        iterative_scan,
        filter_selectivity,
    })
}

/// The spec's default port (`METRICS_PORT`); note that Prometheus itself defaults to it too.
pub const DEFAULT_METRICS_PORT: u16 = 9090;

/// The exporter's validated settings.
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// Start the exporter beside the load test and the benchmarks.
    pub sidecar: bool,
    /// Where `/metrics` is served.
    pub addr: std::net::SocketAddr,
    /// The port was given (`--metrics-port` / `METRICS_PORT`) rather than defaulted: a busy
    /// port is then an error even for the sidecar.
    pub port_given: bool,
    /// How often the server-side state is polled.
    pub poll_interval: Duration,
}

/// The exporter's address and poll interval; the sidecar runs for the load test and `bench`.
pub(super) fn metrics_settings(
    args: &crate::cli::MetricsArgs,
    mode: &Mode,
) -> Result<MetricsSettings, ConfigError> {
    if *mode == Mode::Metrics && args.no_metrics_exporter {
        return Err(bad("--no-metrics-exporter contradicts the metrics command"));
    }
    if args.poll_interval < Duration::from_millis(100) {
        return Err(bad("--poll-interval must be at least 100ms"));
    }
    let port = args.metrics_port.unwrap_or(DEFAULT_METRICS_PORT);
    Ok(MetricsSettings {
        sidecar: !args.no_metrics_exporter
            && matches!(mode, Mode::Load | Mode::Bench(_) | Mode::Capacity(_)),
        addr: std::net::SocketAddr::new(args.metrics_host, port),
        port_given: args.metrics_port.is_some(),
        poll_interval: args.poll_interval,
    })
}

/// Validated `calibrate` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrateSettings {
    /// Operations to compare, in order.
    pub ops: Vec<crate::cli::CalibOp>,
    /// Concurrent clients (pgbench `-c`, Goose users).
    pub clients: usize,
    /// Measured time of each side.
    pub duration: Duration,
    /// Unmeasured time before each side.
    pub warmup: Duration,
    /// Query vectors stored for the search.
    pub queries: usize,
    /// Open model on both sides: the rate and the latency limit past which a transaction is
    /// skipped (pgbench `-R --latency-limit`).
    pub rate: Option<(f64, Duration)>,
}

/// Checks the `calibrate` flags.
pub fn calibrate_settings(a: &crate::cli::CalibrateArgs) -> Result<CalibrateSettings, String> {
    let (ops, clients, duration, warmup, queries) =
        (&a.op, a.clients, a.duration, a.warmup, a.queries);
    let rate = match a.rate {
        None => None,
        Some(r) if r.is_finite() && r > 0.0 => {
            if a.latency_limit < Duration::from_millis(1) {
                return Err(
                    "--latency-limit must be at least 1ms (pgbench counts whole ms)".into(),
                );
            }
            Some((r, Duration::from_millis(a.latency_limit.as_millis() as u64)))
        }
        Some(r) => return Err(format!("--rate must be above 0, got {r}")),
    };
    let mut chosen = Vec::new();
    for &op in ops.iter() {
        if !chosen.contains(&op) {
            chosen.push(op);
        }
    }
    if chosen.is_empty() {
        return Err("--op needs at least one of single, retrieve".into());
    }
    if clients == 0 || clients > 1000 {
        return Err("--clients must be between 1 and 1000".into());
    }
    if duration < Duration::from_secs(1) {
        return Err("--duration must be at least 1s (pgbench -T counts whole seconds)".into());
    }
    if queries == 0 || queries > 1_000_000 {
        return Err("--queries must be between 1 and 1000000".into());
    }
    Ok(CalibrateSettings {
        ops: chosen,
        clients,
        // pgbench -T takes whole seconds: both sides get the same.
        duration: Duration::from_secs(duration.as_secs()),
        warmup: Duration::from_secs(warmup.as_secs()),
        queries,
        rate,
    })
}

/// Validated `capacity` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacitySettings {
    /// What the steps raise.
    pub sweep: crate::cli::Sweep,
    /// The first step's load (operations per second, or users).
    pub start: f64,
    /// Load multiplier between the geometric steps.
    pub factor: f64,
    /// Highest load to try.
    pub max: f64,
    /// Bisection steps near the knee.
    pub refine: usize,
    /// Unmeasured time of each step (whole seconds).
    pub warmup: Duration,
    /// Measured time of each step (whole seconds).
    pub hold: Duration,
    /// `--sweep rate`: the users serving arrivals.
    pub max_in_flight: usize,
    /// `--sweep rate`: spacing of arrivals.
    pub spacing: crate::engine::arrivals::Spacing,
    /// `--sweep rate`: arrivals later than this are dropped.
    pub max_lag: Duration,
}

/// Checks the `capacity` flags (and the load-model flags that apply to it).
pub(super) fn capacity_settings(
    args: &crate::cli::CapacityArgs,
    pacing: &crate::cli::PacingArgs,
    users: Option<usize>,
) -> Result<CapacitySettings, ConfigError> {
    use crate::cli::Sweep;
    if pacing.think_time.is_some()
        || pacing.arrival_rate.is_some()
        || pacing.arrival_stages.is_some()
    {
        return Err(bad(
            "capacity sets the load of each step itself: --think-time, --arrival-rate and \
             --arrival-stages do not apply",
        ));
    }
    let start = args.start.unwrap_or(match args.sweep {
        Sweep::Rate => 50.0,
        Sweep::Concurrency => 1.0,
    });
    if !(start.is_finite() && start > 0.0) {
        return Err(bad(format!("--start must be above 0, got {start}")));
    }
    if !(args.factor.is_finite() && args.factor > 1.0) {
        return Err(bad(format!(
            "--factor must be above 1, got {}",
            args.factor
        )));
    }
    if args.max.is_nan() || args.max < start {
        return Err(bad(format!(
            "--max ({}) is below --start ({start})",
            args.max
        )));
    }
    let whole = |d: Duration| Duration::from_secs(d.as_secs_f64().ceil() as u64);
    let (warmup, hold, refine) = if args.quick {
        (Duration::from_secs(2), Duration::from_secs(6), 2)
    } else {
        (Duration::from_secs(5), Duration::from_secs(20), 3)
    };
    let hold = whole(args.hold.unwrap_or(hold));
    if hold.is_zero() {
        return Err(bad("--hold must be at least 1s"));
    }
    if pacing.max_lag.is_zero() {
        return Err(bad("--max-lag must be above 0"));
    }
    let max_in_flight = pacing.max_in_flight.or(users).unwrap_or(100);
    if max_in_flight == 0 {
        return Err(bad("--max-in-flight must be at least 1"));
    }
    Ok(CapacitySettings {
        sweep: args.sweep,
        start,
        factor: args.factor,
        max: args.max,
        refine: if args.quick && args.refine == 3 {
            refine
        } else {
            args.refine
        },
        warmup: whole(args.warmup.unwrap_or(warmup)),
        hold,
        max_in_flight,
        spacing: pacing.arrivals,
        max_lag: pacing.max_lag,
    })
}
