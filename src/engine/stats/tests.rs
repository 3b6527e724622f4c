//! Unit tests of the statistics: shards, failures, response and service time, the history.

use super::*;

fn outcome(ms: u64, result: Result<u64, Failure>) -> Outcome {
    Outcome {
        namespaces: 0,
        schedule_lag: Duration::ZERO,
        pool_wait: Duration::from_micros(5),
        service: Some(Duration::from_millis(ms)),
        result,
        short: false,
        bytes: 0,
    }
}

#[test]
fn shards_merge_and_failures_are_counted_by_class() {
    let hub = StatsHub::new(4);
    hub.record(0, Op::Retrieve, &outcome(2, Ok(1)));
    hub.record(1, Op::Retrieve, &outcome(4, Ok(0)));
    hub.record(2, Op::Retrieve, &outcome(8, Err(Failure::PoolTimeout)));
    let snap = hub.snapshot();
    let s = snap.op(Op::Retrieve);
    assert_eq!((s.ok, s.failed, s.rows, s.empty), (2, 1, 1, 1));
    assert_eq!(s.failure_counts().get("pool_timeout"), Some(&1));
    assert_eq!(s.latency.len(), 3);
    assert!((s.latency.max() as i64 - 8000).abs() < 10);
    assert_eq!(snap.aggregated().count(), 3);
}

#[test]
fn a_pool_timeout_has_its_wait_as_response_time_and_no_service_time() {
    let hub = StatsHub::new(1);
    let timed_out = Outcome {
        namespaces: 0,
        schedule_lag: Duration::ZERO,
        pool_wait: Duration::from_secs(2),
        service: None,
        result: Err(Failure::PoolTimeout),
        short: false,
        bytes: 0,
    };
    hub.record(0, Op::Retrieve, &timed_out);
    hub.record(0, Op::Retrieve, &outcome(3, Ok(1)));
    let snap = hub.snapshot();
    let s = snap.op(Op::Retrieve);
    assert_eq!(s.latency.len(), 2);
    assert!((s.latency.max() as i64 - 2_000_000).abs() < 2_000);
    // The successful one: 5 µs wait + 3 ms query.
    assert!((s.latency.min() as i64 - 3_005).abs() < 5);
    assert_eq!(s.service.len(), 1);
    assert!((s.service.max() as i64 - 3_000).abs() < 5);
    assert_eq!(s.pool_wait.len(), 2);
}

/// The history as it was computed before the sampler kept its own totals: from snapshots.
fn row_from_snapshots(interval: &OpStats, total: &OpStats) -> HistoryRow {
    let (h, t) = (&interval.latency, &total.latency);
    HistoryRow {
        count: interval.count(),
        failed: interval.failed,
        bytes: interval.bytes,
        percentiles: (!h.is_empty()).then(|| QUANTILES.map(|q| h.value_at_percentile(q))),
        total_count: total.count(),
        total_failed: total.failed,
        total_median: if t.is_empty() {
            0
        } else {
            t.value_at_quantile(0.5)
        },
        total_mean: t.mean(),
        total_min: if t.is_empty() { 0 } else { t.min() },
        total_max: t.max(),
        total_mean_bytes: total.mean_bytes(),
    }
}

#[test]
fn the_history_says_what_snapshots_at_each_sample_say() {
    use rand::{Rng, SeedableRng};
    let hub = StatsHub::new(4);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
    let mut record = |n: usize, ops: &[Op]| {
        for _ in 0..n {
            let ms = rng.random_range(1..40);
            let result = match rng.random_range(0..20) {
                0 => Err(Failure::PoolTimeout),
                n => Ok(n),
            };
            let mut o = outcome(ms, result);
            o.bytes = rng.random_range(0..5000);
            let op = ops[rng.random_range(0..ops.len())];
            hub.record(rng.random_range(0..300), op, &o);
        }
    };
    record(500, &[Op::Retrieve, Op::Insert]);
    let mut sampler = HistorySampler::new(hub.clone());
    let mut before = hub.snapshot();
    for (n, ops) in [(300, &Op::ALL[..3]), (0, &Op::ALL[..]), (700, &Op::ALL[..])] {
        record(n, ops);
        let sample = sampler.sample();
        let now = hub.snapshot();
        let interval = Snapshot {
            ops: std::array::from_fn(|i| now.ops[i].since(&before.ops[i])),
        };
        let mut expected: Vec<_> = Op::ALL
            .iter()
            .filter(|op| now.op(**op).count() > 0)
            .map(|op| (Some(*op), row_from_snapshots(interval.op(*op), now.op(*op))))
            .collect();
        expected.push((
            None,
            row_from_snapshots(&interval.aggregated(), &now.aggregated()),
        ));
        assert_eq!(format!("{:?}", sample.rows), format!("{expected:?}"));
        before = now;
    }
    drop(sampler);
    record(10, &[Op::Retrieve]);
    assert!(hub
        .shards
        .iter()
        .all(|s| s.lock().unwrap().fresh[2].is_empty()));
}

#[test]
fn since_gives_the_interval() {
    let hub = StatsHub::new(1);
    hub.record(0, Op::Insert, &outcome(1, Ok(1)));
    let first = hub.snapshot();
    hub.record(0, Op::Insert, &outcome(3, Ok(1)));
    let diff = hub.snapshot().op(Op::Insert).since(first.op(Op::Insert));
    assert_eq!(diff.ok, 1);
    assert_eq!(diff.latency.len(), 1);
    assert!(diff.latency.min() >= 2900);
}

#[test]
fn distinct_namespaces_average_over_searches_that_returned_rows() {
    let hub = StatsHub::new(2);
    let mut two = outcome(1, Ok(20));
    two.namespaces = 2;
    let mut three = outcome(1, Ok(20));
    three.namespaces = 3;
    hub.record(0, Op::CrossShardSearch, &two);
    hub.record(1, Op::CrossShardSearch, &three);
    // An empty result has no namespace and does not count.
    hub.record(1, Op::CrossShardSearch, &outcome(1, Ok(0)));
    let snap = hub.snapshot();
    assert_eq!(
        snap.op(Op::CrossShardSearch).mean_distinct_namespaces(),
        Some(2.5)
    );
    assert_eq!(snap.op(Op::Retrieve).mean_distinct_namespaces(), None);
}
