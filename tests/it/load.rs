//! One short load test through the binary (10 users, 20 s): the operation mix of
//! `VectorSearchUser` (10:3:2:1), results that found rows, summary counts that agree with the
//! rows written to the database, and reports whose CSV headers are Locust's own column names.

use std::collections::BTreeSet;
use std::path::Path;

use pgvector_loadtest::report::summary::{OpSummary, Summary};

use crate::util::{run_bin, temp_dir, Pg, SMALL_DATA};

/// Locust's `_stats.csv` columns, written out here so that a change in the crate shows.
const LOCUST_STATS: &str = "Type,Name,Request Count,Failure Count,Median Response Time,\
Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,\
Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%";
/// Locust's `_failures.csv` columns.
const LOCUST_FAILURES: &str = "Method,Name,Error,Occurrences,First Seen,Last Seen";
/// Locust's `_stats_history.csv` columns.
const LOCUST_HISTORY: &str = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,\
75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,\
Total Median Response Time,Total Average Response Time,Total Min Response Time,\
Total Max Response Time,Total Average Content Size";

/// The four operations of `VectorSearchUser` and their weights.
const MIX: [(&str, f64); 4] = [
    ("vector_search_single_shard", 10.0),
    ("vector_search_cross_shard", 3.0),
    ("retrieve_memory", 2.0),
    ("insert_memory", 1.0),
];

fn op<'a>(summary: &'a Summary, name: &str) -> &'a OpSummary {
    summary
        .operations
        .iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("{name} missing from the summary: {summary:#?}"))
}

fn first_line(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn short_load_test_mix_results_and_locust_reports() {
    let pg = Pg::start().await;
    let reports = temp_dir();
    let dir = reports.path().to_str().unwrap();
    let url = pg.url();
    let mut args = vec!["--database-url", &url, "--report-dir", dir];
    args.extend(SMALL_DATA);
    args.extend([
        "--users",
        "10",
        "--hatch-rate",
        "10",
        "--run-time",
        "20s",
        "--no-print-metrics",
    ]);
    let run = run_bin(&args, &[]).await;
    run.expect_code(0);

    let summary: Summary = serde_json::from_slice(
        &std::fs::read(reports.path().join("load_test_summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary.max_users, 10);
    assert!(!summary.interrupted);
    assert!(
        (19.0..30.0).contains(&summary.duration_s),
        "duration {}",
        summary.duration_s
    );
    assert_eq!(summary.aggregated.failed, 0, "{:#?}", summary.aggregated);

    // The mix: each operation's share of the four within 0.05 of its weight's share.
    let counts: Vec<u64> = MIX.iter().map(|(n, _)| op(&summary, n).count).collect();
    let total: u64 = counts.iter().sum();
    eprintln!("operation counts {counts:?} of {total}");
    assert!(total >= 200, "only {total} operations in 20 s: {counts:?}");
    for ((name, weight), count) in MIX.iter().zip(&counts) {
        let share = *count as f64 / total as f64;
        let expected = weight / 16.0;
        assert!(
            (share - expected).abs() <= 0.05,
            "{name}: share {share:.3}, expected {expected:.3} (counts {counts:?})"
        );
    }

    // Results: searches fill k (10 and 20 by default), retrieves hit, writes write.
    let single = op(&summary, "vector_search_single_shard");
    assert_eq!(single.mean_rows, 10.0, "{single:#?}");
    assert_eq!(single.short_result_share, Some(0.0));
    let cross = op(&summary, "vector_search_cross_shard");
    assert_eq!(cross.mean_rows, 20.0, "{cross:#?}");
    // Where a search's rows come from: one namespace for the single-namespace search; for the
    // cross-namespace search (5 namespaces asked), between 1 and 5.
    assert_eq!(single.mean_distinct_namespaces, Some(1.0));
    let spread = cross
        .mean_distinct_namespaces
        .expect("measured for searches");
    eprintln!("cross-namespace search: {spread} distinct namespaces per search");
    assert!((1.0..=5.0).contains(&spread), "{spread}");
    assert_eq!(
        op(&summary, "retrieve_memory").mean_distinct_namespaces,
        None
    );
    let retrieve = op(&summary, "retrieve_memory");
    assert_eq!(retrieve.empty_share, 0.0, "{retrieve:#?}");
    assert_eq!(retrieve.mean_rows, 1.0);
    let insert = op(&summary, "insert_memory");
    assert_eq!(insert.mean_rows, 1.0);
    // One user in ten is a BulkInsertUser; it inserts at once and then every 5-10 s.
    let bulk = op(&summary, "bulk_insert");
    assert!(bulk.count >= 1, "{bulk:#?}");
    assert_eq!(bulk.mean_rows, 50.0);
    for o in &summary.operations {
        assert_eq!(o.failed, 0, "{o:#?}");
        assert!(o.latency_us.p50 > 0 && o.latency_us.p50 <= o.latency_us.max);
        assert!(o.throughput_per_s > 0.0);
    }
    assert_eq!(
        summary.aggregated.count,
        summary.operations.iter().map(|o| o.count).sum::<u64>()
    );

    // What the summary says was written is in the table.
    let written: i64 = pg
        .client("postgres")
        .await
        .query_one(
            "SELECT count(*) FROM memory_entries WHERE key LIKE 'lt\\_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(written as u64, insert.ok + 50 * bulk.ok);

    // Locust's CSV headers, exactly.
    assert_eq!(
        first_line(&reports.path().join("load_test_stats.csv")),
        LOCUST_STATS
    );
    assert_eq!(
        first_line(&reports.path().join("load_test_failures.csv")),
        LOCUST_FAILURES
    );
    assert_eq!(
        first_line(&reports.path().join("load_test_stats_history.csv")),
        LOCUST_HISTORY
    );

    // The stats CSV: a row per operation that ran, then Aggregated, with the summary's counts.
    let mut stats = csv::Reader::from_path(reports.path().join("load_test_stats.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = stats.records().map(Result::unwrap).collect();
    let names: Vec<&str> = rows.iter().map(|r| &r[1]).collect();
    let mut expected: Vec<&str> = summary.operations.iter().map(|o| o.name.as_str()).collect();
    expected.push("Aggregated");
    assert_eq!(names, expected);
    assert_eq!(summary.operations.len(), 5, "not every operation ran");
    for row in &rows {
        let count: u64 = row[2].parse().unwrap();
        let want = if &row[1] == "Aggregated" {
            summary.aggregated.count
        } else {
            op(&summary, &row[1]).count
        };
        assert_eq!(count, want, "Request Count of {}", &row[1]);
        assert_eq!(&row[3], "0", "Failure Count of {}", &row[1]);
        // Average Content Size: the bytes of the rows received. A search's 10 or 20 rows
        // (namespace, key, value, metadata, similarity) are hundreds of bytes; writes
        // receive no rows.
        let size: u64 = row[8].parse().unwrap();
        match &row[1] {
            "vector_search_single_shard" | "vector_search_cross_shard" => {
                assert!(size > 500, "Average Content Size of {}: {size}", &row[1])
            }
            "retrieve_memory" => assert!(size > 50, "retrieve: {size}"),
            "insert_memory" | "bulk_insert" => assert_eq!(size, 0, "{}", &row[1]),
            _ => {}
        }
    }
    let failures = std::fs::read_to_string(reports.path().join("load_test_failures.csv")).unwrap();
    assert_eq!(failures.lines().count(), 1, "failures listed: {failures}");
    let mut history =
        csv::Reader::from_path(reports.path().join("load_test_stats_history.csv")).unwrap();
    let history_names: BTreeSet<String> = history
        .records()
        .map(|r| r.unwrap()[3].to_string())
        .collect();
    assert!(
        history_names.contains("Aggregated"),
        "history: {history_names:?}"
    );

    // Goose's HTML report names every operation; its JSON report exists beside it.
    let html = std::fs::read_to_string(reports.path().join("load_test.html")).unwrap();
    for o in &summary.operations {
        assert!(html.contains(&o.name), "load_test.html lacks {}", o.name);
    }
    assert!(reports.path().join("load_test.json").is_file());
    pg.stop().await;
}
