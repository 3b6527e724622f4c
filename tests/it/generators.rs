//! Several generators as one test (`--worker I/N`) against one real server: they seed once,
//! meet in `pgvector_loadtest_runs` and start together; `merge` adds their histograms. The
//! merged counts are the sums of the generators' counts, and the merged percentiles are those
//! of one histogram holding every generator's samples (read back from their interval logs).
//! A generator whose peers never arrive fails clearly, and leaves no row behind.

use std::path::Path;

use pgvector_loadtest::engine::stats::hlog;
use pgvector_loadtest::report::summary::Summary;

use crate::util::{run_bin, temp_dir, Pg, SMALL_DATA};

/// A generator's arguments: generator `index` of `count` in `run_id`, reports in `dir`.
fn generator_args(url: &str, dir: &Path, index: usize, count: usize, run_id: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "--database-url",
        url,
        "--worker",
        &format!("{index}/{count}"),
        "--run-id",
        run_id,
        "--users",
        "6",
        "--hatch-rate",
        "6",
        "--run-time",
        "6s",
        "--pool-size",
        "8",
        "--no-metrics-exporter",
        "--report-dir",
        dir.to_str().expect("utf-8 path"),
    ]
    .map(String::from)
    .to_vec();
    args.extend(SMALL_DATA.map(String::from));
    args
}

fn summary(dir: &Path) -> Summary {
    let bytes = std::fs::read(dir.join("load_test_summary.json")).expect("a summary");
    serde_json::from_slice(&bytes).expect("the summary parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_generators_seed_once_start_together_and_merge_exactly() {
    let pg = Pg::start().await;
    let url = pg.url();
    let dir = temp_dir();
    let dirs: Vec<_> = (0..3).map(|i| dir.path().join(format!("w{i}"))).collect();
    let runs = futures::future::join_all(dirs.iter().enumerate().map(|(i, d)| {
        let args = generator_args(&url, d, i, 3, "it-three");
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_bin(&args, &[]).await
        }
    }))
    .await;
    for run in &runs {
        run.expect_code(0);
    }
    let seeded = runs
        .iter()
        .filter(|r| r.stderr().contains("seeding "))
        .count();
    let reused = runs
        .iter()
        .filter(|r| r.stderr().contains("reusing seeded data"))
        .count();
    assert_eq!((seeded, reused), (1, 2), "seeded once, reused twice");
    // All three registered and started.
    let client = pg.client("postgres").await;
    let started: i64 = client
        .query_one(
            "SELECT count(started_at) FROM pgvector_loadtest_runs WHERE run_id = 'it-three'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(started, 3);
    // Generator i's users live in the namespaces n % 3 == i: its inserts went there only.
    let owners: Vec<(String, i64)> = client
        .query(
            "SELECT namespace, count(*) FROM memory_entries WHERE key LIKE 'lt_%' \
             GROUP BY namespace ORDER BY namespace",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(owners.len() >= 3, "inserts in {owners:?}");

    let merged = dir.path().join("merged");
    let mut args = vec!["merge"];
    let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    args.extend(["--report-dir", merged.to_str().unwrap()]);
    run_bin(&args, &[]).await.expect_code(0);
    pg.stop().await;
    // Two of the three are not the run.
    let partial = dir.path().join("partial");
    let two = [
        "merge",
        names[0].as_str(),
        names[2].as_str(),
        "--report-dir",
        partial.to_str().unwrap(),
    ];
    let run = run_bin(&two, &[]).await;
    run.expect_code(2);
    assert!(
        run.stderr().contains("run it-three has 3 generators"),
        "{}",
        run.dump()
    );

    let parts: Vec<Summary> = dirs.iter().map(|d| summary(d)).collect();
    let all = summary(&merged);
    let g = all.generators.as_ref().expect("marked as merged");
    assert_eq!((g.count, g.index, g.run_id.as_str()), (3, None, "it-three"));
    assert_eq!(all.max_users, 6);
    assert_eq!(
        all.aggregated.count,
        parts.iter().map(|p| p.aggregated.count).sum::<u64>()
    );
    for op in &all.operations {
        let of = |p: &Summary| {
            p.operations
                .iter()
                .find(|o| o.name == op.name)
                .map_or(0, |o| o.count)
        };
        assert_eq!(op.count, parts.iter().map(of).sum::<u64>(), "{}", op.name);
        // One histogram of every generator's samples, from their own interval logs.
        let mut h = pgvector_loadtest::engine::stats::histogram();
        for d in &dirs {
            let text = std::fs::read(d.join("histograms.hlog")).unwrap();
            for i in hlog::read(&text).unwrap() {
                if i.tag == format!("{}:response", op.name) {
                    h.add(&i.histogram).unwrap();
                }
            }
        }
        assert_eq!(h.len(), op.count, "{}", op.name);
        for (q, merged) in [
            (50.0, op.latency_us.p50),
            (95.0, op.latency_us.p95),
            (99.0, op.latency_us.p99),
        ] {
            assert_eq!(h.value_at_percentile(q), merged, "{} p{q}", op.name);
        }
    }
    // The merged reports have a single run's shape.
    for file in [
        "load_test_stats.csv",
        "load_test_failures.csv",
        "load_test_stats_history.csv",
        "report.html",
        "histograms.hlog",
        "history.hlog",
    ] {
        assert!(merged.join(file).is_file(), "merged {file}");
    }
    let header = |p: &Path| {
        let text = std::fs::read_to_string(p.join("load_test_stats.csv")).unwrap();
        let names: Vec<String> = text
            .lines()
            .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
            .collect();
        names
    };
    assert_eq!(header(&merged), header(&dirs[0]));
    let history = std::fs::read_to_string(merged.join("load_test_stats_history.csv")).unwrap();
    assert!(history.lines().count() > 5, "{history}");
}

#[tokio::test]
async fn a_generator_alone_gives_up_clearly_and_merge_wants_every_generator() {
    let pg = Pg::start().await;
    let url = pg.url();
    let dir = temp_dir();
    let mut args = generator_args(&url, &dir.path().join("w0"), 0, 2, "it-alone");
    args.extend(["--rendezvous-timeout", "2s"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_bin(&args, &[]).await;
    run.expect_code(1);
    let err = run.stderr();
    assert!(
        err.contains("only 1 of 2 generators of run it-alone arrived")
            && err.contains("missing: 1"),
        "{}",
        run.dump()
    );
    assert!(
        !dir.path().join("w0/load_test_summary.json").exists(),
        "nothing ran"
    );
    let client = pg.client("postgres").await;
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM pgvector_loadtest_runs WHERE run_id = 'it-alone'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "the row of a run that never started is removed");
    pg.stop().await;

    // A directory that is not a generator's.
    let merged = dir.path().join("merged");
    let lone = dir.path().join("w0");
    let run = run_bin(
        &[
            "merge",
            lone.to_str().unwrap(),
            "--report-dir",
            merged.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    run.expect_code(2);
    assert!(run.stderr().contains("worker.json"), "{}", run.dump());
}
