//! Micro-benchmarks of the per-operation hot path (`cargo bench --bench hotpath`): what the
//! harness spends on one operation besides the query itself. Criterion prints ns per
//! operation for each:
//! - `query_vector`: drawing a 384-dim query vector from the dataset's distribution;
//! - `seed_row_generate`: what seeding computes per row before COPY encodes it;
//! - `vector_to_sql`: encoding it as the binary `vector` parameter (what tokio-postgres does);
//! - `stats_hub_record`: our µs HDR histograms ([`StatsHub::record`]);
//! - `history_sample_16_shards`: one once-a-second history sample ([`HistorySampler`]) of a
//!   load test's hub (16 shards, 30,000 operations so far, 800 since the last sample: the
//!   300-user job's rate); per operation it costs this / 800;
//! - `goose_record_custom`: `GooseUser::record_custom_request_duration`, the request metric
//!   built and sent to Goose's aggregator (drained by a thread here, as Goose's parent would);
//! - `prometheus_observe` / `prometheus_with_labels_observe`: a histogram observation through
//!   a resolved handle (what the exporter's users do) and through a label lookup.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use goose::config::GooseConfiguration;
use goose::goose::GooseUser;
use pgvector::Vector;
use pgvector_loadtest::engine::stats::{HistorySampler, Outcome, StatsHub};
use pgvector_loadtest::workload::dataset::{Dataset, DatasetSpec};
use pgvector_loadtest::workload::ops::Op;
use prometheus::{Histogram, HistogramOpts, HistogramVec};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::types::{ToSql, Type};

fn dataset() -> Dataset {
    Dataset::synthetic(DatasetSpec::default()).expect("default dataset")
}

fn vectors(c: &mut Criterion) {
    let ds = dataset();
    let mut rng = SmallRng::seed_from_u64(1);
    c.bench_function("query_vector_384", |b| {
        b.iter(|| Vector::from(ds.query_vector(black_box(3), &mut rng)))
    });
    // What seeding generates per row before COPY encodes it (db::seed::copy_namespace).
    let mut buf = vec![0f32; ds.spec().dim];
    let mut row = 0usize;
    c.bench_function("seed_row_generate_384", |b| {
        b.iter(|| {
            row = (row + 1) % 5000;
            ds.vector_into(3, row, &mut buf);
            let embedding = Vector::from(buf.clone());
            let metadata = serde_json::json!({ "row": row, "seeded": true });
            black_box((embedding, metadata, ds.key(row), ds.value(3, row)))
        })
    });
    let v = Vector::from(ds.query_vector(3, &mut rng));
    let mut buf = BytesMut::with_capacity(4096);
    c.bench_function("vector_to_sql_384", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&v).to_sql(&Type::BYTEA, &mut buf).unwrap();
            black_box(buf.len())
        })
    });
}

fn stats(c: &mut Criterion) {
    let hub = StatsHub::new(16);
    let outcome = Outcome {
        namespaces: 0,
        schedule_lag: Duration::ZERO,
        pool_wait: Duration::from_micros(3),
        service: Some(Duration::from_micros(180)),
        result: Ok(10),
        short: false,
        bytes: 1200,
    };
    let mut user = 0usize;
    c.bench_function("stats_hub_record", |b| {
        b.iter(|| {
            user = user.wrapping_add(1);
            hub.record(user % 64, Op::SingleShardSearch, black_box(&outcome))
        })
    });
}

/// Records `n` operations as the 300-user job makes them: its weights, users 0..300, latencies
/// of a few ms with a tail.
fn record_load(hub: &StatsHub, rng: &mut SmallRng, n: usize) {
    for _ in 0..n {
        let op = match rng.random_range(0..17usize) {
            0..10 => Op::SingleShardSearch,
            10..13 => Op::CrossShardSearch,
            13..15 => Op::Retrieve,
            15 => Op::Insert,
            _ => Op::BulkInsert,
        };
        let micros = if rng.random_bool(0.02) {
            rng.random_range(50_000..400_000)
        } else {
            rng.random_range(300..15_000)
        };
        let outcome = Outcome {
            namespaces: 0,
            schedule_lag: Duration::ZERO,
            pool_wait: Duration::from_micros(rng.random_range(1..50)),
            service: Some(Duration::from_micros(micros)),
            result: Ok(10),
            short: false,
            bytes: 1200,
        };
        hub.record(rng.random_range(0..300), op, &outcome);
    }
}

fn history(c: &mut Criterion) {
    let hub = StatsHub::new(16);
    let mut rng = SmallRng::seed_from_u64(7);
    let mut sampler = HistorySampler::new(hub.clone());
    record_load(&hub, &mut rng, 30_000);
    sampler.sample();
    c.bench_function("history_sample_16_shards", |b| {
        b.iter_batched(
            || record_load(&hub, &mut rng, 800),
            |()| black_box(sampler.sample()),
            BatchSize::PerIteration,
        )
    });
}

fn goose_record(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = GooseConfiguration::default();
    let mut user = GooseUser::single(url::Url::parse("http://127.0.0.1/").unwrap(), &config)
        .expect("a Goose user");
    let (tx, rx) = flume::unbounded();
    user.metrics_channel = Some(tx);
    // Goose's parent drains the channel during a run; a thread does it here.
    let drain = std::thread::spawn(move || rx.iter().count());
    c.bench_function("goose_record_custom", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    user.record_custom_request_duration(
                        "SQL",
                        "vector_search_single_shard",
                        black_box(Duration::from_micros(180)),
                        true,
                        None,
                        None,
                    )
                    .await
                    .expect("recorded");
                }
                started.elapsed()
            })
        })
    });
    user.metrics_channel = None;
    drop(user);
    let _ = drain.join();
}

fn prometheus_observe(c: &mut Criterion) {
    let buckets = vec![
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    ];
    let h = Histogram::with_opts(HistogramOpts::new("h", "h").buckets(buckets.clone())).unwrap();
    c.bench_function("prometheus_observe", |b| {
        b.iter(|| h.observe(black_box(0.00018)))
    });
    let vec = Arc::new(
        HistogramVec::new(
            HistogramOpts::new("v", "v").buckets(buckets),
            &["namespace", "operation"],
        )
        .unwrap(),
    );
    c.bench_function("prometheus_with_labels_observe", |b| {
        b.iter(|| {
            vec.with_label_values(&[black_box("ns_003"), "vector_search_single_shard"])
                .observe(0.00018)
        })
    });
}

criterion_group! {
    name = hotpath;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = vectors, stats, history, goose_record, prometheus_observe
}
criterion_main!(hotpath);
