//! Filtered vector search: seeded rows carry the bucket the dataset deals them (so a filter
//! keeps a known share), pgvector's post-filtering leaves a selective filter's searches short
//! without iterative scan and fills them with it, recall is judged against the filtered truth,
//! and the load test runs the filtered search only when it is given a weight.

use pgvector_loadtest::bench::report::{BenchReport, BenchResult};
use pgvector_loadtest::report::summary::Summary;
use pgvector_loadtest::workload::dataset::{Dataset, DatasetSpec};

use crate::util::{load_args, run_bin, temp_dir, Pg};

/// Two namespaces of 5,000 rows: 1 % is about 50 rows per namespace, five times k.
const DATA: [&str; 4] = ["--namespaces", "2", "--rows-per-namespace", "5000"];

fn read_report(dir: &std::path::Path) -> BenchReport {
    let text = std::fs::read_to_string(dir.join("benchmark_results.json"))
        .expect("benchmark_results.json exists");
    serde_json::from_str(&text).expect("benchmark_results.json has the documented shape")
}

/// Seeded rows whose bucket is below `threshold`, per namespace, as the dataset deals them.
fn expected_matches(threshold: u32) -> Vec<i64> {
    let dataset = Dataset::synthetic(DatasetSpec {
        namespaces: 2,
        rows_per_namespace: 5000,
        ..DatasetSpec::default()
    })
    .unwrap();
    (0..2)
        .map(|ns| {
            (0..5000)
                .filter(|&row| dataset.bucket(ns, row) < threshold)
                .count() as i64
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_search_is_short_without_iterative_scan_and_full_with_it() {
    let pg = Pg::start().await;
    let reports = temp_dir();
    let url = pg.url();
    let dir = reports.path().to_str().unwrap();
    let mut args = vec![
        "bench",
        "--only",
        "filtered",
        "--filter-selectivity",
        "0.01",
        "--iterative-scan",
        "off,relaxed_order",
        "--filtered-iterations",
        "100",
        "--warmup",
        "10",
        "--database-url",
        &url,
        "--report-dir",
        dir,
    ];
    args.extend(DATA);
    let run = run_bin(&args, &[]).await;
    run.expect_code(0);

    // The table holds exactly the buckets the dataset deals: 1 % of the rows, give or take.
    let client = pg.client("postgres").await;
    let rows = client
        .query(
            "SELECT namespace, count(*) FROM memory_entries \
             WHERE (metadata->>'bucket')::int < 100 GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let counts: Vec<i64> = rows.iter().map(|r| r.get(1)).collect();
    assert_eq!(counts, expected_matches(100));
    assert!(counts.iter().all(|&n| (30..=70).contains(&n)), "{counts:?}");

    let report = read_report(reports.path());
    assert_eq!(report.settings.filter_selectivity, [0.01]);
    assert_eq!(report.results.len(), 2, "{:?}", report.results);
    let find = |mode: &str| -> &BenchResult {
        report
            .results
            .iter()
            .find(|r| r.iterative_scan == mode)
            .unwrap_or_else(|| panic!("no result for {mode}: {:?}", report.results))
    };
    let (off, relaxed) = (find("off"), find("relaxed_order"));
    for r in [off, relaxed] {
        assert_eq!(r.operation, "filtered_search");
        assert_eq!(r.filter_selectivity, Some(0.01));
        assert_eq!((r.iterations, r.failures), (100, 0), "{r:?}");
        assert_eq!(r.k, Some(10));
    }
    let short = |r: &BenchResult| r.short_result_share.unwrap();
    let recall = |r: &BenchResult| r.recall_mean.unwrap();
    eprintln!(
        "1 % filter, ef_search 40: off recall {} short {}; relaxed_order recall {} short {}",
        recall(off),
        short(off),
        recall(relaxed),
        short(relaxed)
    );
    // Without iterative scan the index returns its 40 nearest and the filter keeps about 1 %
    // of them: nearly every search is short, and it misses most of the filtered truth.
    assert!(short(off) > 0.5, "off: short share {}", short(off));
    assert!(recall(off) < 0.3, "off: recall {}", recall(off));
    // relaxed_order scans on until k rows pass the filter.
    assert!(short(relaxed) < 0.1, "relaxed: short {}", short(relaxed));
    assert!(recall(relaxed) > 0.9, "relaxed: recall {}", recall(relaxed));

    let out = run.stdout();
    assert!(out.contains("Filtered Vector Search"), "{out}");
    assert!(out.contains("filtered 1%"), "{out}");
    let svg = std::fs::read_to_string(reports.path().join("recall_vs_latency.svg")).unwrap();
    assert!(svg.contains("filtered 1% / off") && svg.contains("filtered 1% / relaxed_order"));
    pg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_test_runs_the_filtered_search_only_with_a_weight() {
    let pg = Pg::start().await;
    let url = pg.url();
    let summary_of = |dir: &std::path::Path| -> Summary {
        serde_json::from_slice(&std::fs::read(dir.join("load_test_summary.json")).unwrap()).unwrap()
    };
    // Weighted like the single-namespace search: about 10 of every 26 operations. Half of the
    // rows pass, so the index's 40 candidates fill k = 10 in most searches.
    let weighted = temp_dir();
    let mut args = load_args(&url, weighted.path(), "4", "5s");
    args.extend(
        [
            "--think-time",
            "0",
            "--filtered-weight",
            "10",
            "--filter-selectivity",
            "0.5",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_bin(&args, &[]).await;
    run.expect_code(0);
    let summary = summary_of(weighted.path());
    let filtered = summary
        .operations
        .iter()
        .find(|o| o.name == "vector_search_filtered")
        .unwrap_or_else(|| panic!("no filtered search: {}", run.dump()));
    let total: u64 = summary.operations.iter().map(|o| o.count).sum();
    let share = filtered.count as f64 / total as f64;
    assert!(filtered.count > 50 && filtered.failed == 0, "{filtered:?}");
    assert!((0.25..0.55).contains(&share), "filtered share {share}");
    assert!(
        filtered.mean_rows > 5.0 && filtered.mean_rows <= 10.0,
        "{filtered:?}"
    );
    let stats = std::fs::read_to_string(weighted.path().join("load_test_stats.csv")).unwrap();
    assert!(stats.contains("SQL,vector_search_filtered,"), "{stats}");

    // By default it is not in the mix, so no report lists it.
    let plain = temp_dir();
    let args = load_args(&url, plain.path(), "2", "2s");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_bin(&args, &[]).await.expect_code(0);
    let summary = summary_of(plain.path());
    assert!(summary.aggregated.count > 0);
    assert!(
        summary
            .operations
            .iter()
            .all(|o| o.name != "vector_search_filtered"),
        "{:?}",
        summary.operations
    );
    pg.stop().await;
}
