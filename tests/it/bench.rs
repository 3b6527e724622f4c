//! The benchmark suite: `bench --quick` writes every benchmark with recall to
//! `benchmark_results.json` and meets the concurrent benchmark's connection target; bulk
//! insert adds exactly the rows it reports, on a rerun too; recall reacts to the index settings
//! where filtering matters and judges a `--min-similarity` search by what the filter leaves;
//! the synthetic defaults are hard enough for `ef_search` to matter.

use crate::util::{run_bin, temp_dir, Pg, SMALL_DATA};
use pgvector_loadtest::bench::report::{BenchReport, BenchResult};

fn read_report(dir: &std::path::Path) -> BenchReport {
    let text = std::fs::read_to_string(dir.join("benchmark_results.json"))
        .expect("benchmark_results.json exists");
    serde_json::from_str(&text).expect("benchmark_results.json has the documented shape")
}

/// High enough that most searches keep fewer than k = 10 of their neighbours (73 % here).
const MIN_SIMILARITY: &str = "0.55";

async fn count_rows(pg: &Pg) -> i64 {
    pg.client("postgres")
        .await
        .query_one("SELECT count(*) FROM memory_entries", &[])
        .await
        .unwrap()
        .get(0)
}

/// Rows a bulk-insert result says it wrote: warm-up and measured batches alike.
fn rows_written(bulk: &BenchResult) -> i64 {
    assert_eq!(bulk.operation, "bulk_insert");
    assert_eq!(bulk.failures, 0, "{bulk:?}");
    let batches = bulk.iterations as i64 + bulk.warmup_iterations as i64;
    batches * bulk.rows_per_batch.expect("rows per batch") as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_suite_writes_every_benchmark_with_recall() {
    // The concurrent benchmark's 120 clients need more than the test servers' usual 100.
    let pg = Pg::start_with_max_connections(200).await;
    let reports = temp_dir();
    let url = pg.url();
    let dir = reports.path().to_str().unwrap();
    let run = run_bin(
        &[
            "bench",
            "--quick",
            "--database-url",
            &url,
            "--report-dir",
            dir,
            "--namespaces",
            "6",
            "--rows-per-namespace",
            "500",
        ],
        &[],
    )
    .await;
    run.expect_code(0);
    let out = run.stdout();
    for title in [
        "Single-Shard Vector Search",
        "Cross-Shard Vector Search",
        "Filtered Vector Search",
        "Concurrent Queries",
        "Bulk Insert",
    ] {
        assert!(out.contains(title), "console lacks {title}:\n{out}");
    }
    let verdict = out
        .lines()
        .find(|l| l.contains("concurrent server connections"))
        .unwrap_or_else(|| panic!("no concurrent verdict:\n{out}"));
    assert!(verdict.trim_end().ends_with("PASS"), "{verdict}");

    let report = read_report(reports.path());
    assert_eq!(report.connection.host, "127.0.0.1");
    assert_eq!(report.connection.port, pg.port());
    assert_eq!(report.connection.database, "postgres");
    assert_eq!(report.settings.total_rows, 3000);
    assert_eq!(report.settings.dim, 384);
    assert_eq!(report.settings.pgvector_version, "0.8.6");
    assert!(report.settings.server_version.starts_with("18."));
    let ops: Vec<&str> = report
        .results
        .iter()
        .map(|r| r.operation.as_str())
        .collect();
    assert_eq!(
        ops,
        [
            "single_shard_search",
            "cross_shard_search",
            "filtered_search",
            "concurrent_queries",
            "bulk_insert"
        ]
    );
    for r in &report.results {
        assert_eq!(r.failures, 0, "{r:?}");
        assert!(r.iterations >= 5, "{r:?}");
        assert!(
            r.min_ms > 0.0 && r.min_ms <= r.p50_ms && r.p50_ms <= r.p95_ms && r.p95_ms <= r.max_ms,
            "{r:?}"
        );
        assert!(r.qps > 0.0, "{r:?}");
        assert!(r.warmup_iterations > 0, "{r:?}");
    }
    let single = &report.results[0];
    assert_eq!(single.iterations, 100, "--quick runs a tenth of 1000");
    assert_eq!(single.k, Some(10));
    let recall = single.recall_mean.expect("searches carry recall");
    assert!((0.8..=1.0).contains(&recall), "recall {recall}");
    assert!(single.recall_p5.unwrap() <= recall);
    assert_eq!(report.results[1].k, Some(20));
    let filtered = &report.results[2];
    assert_eq!(filtered.iterations, 50, "--quick runs a tenth of 500");
    assert_eq!(filtered.filter_selectivity, Some(0.01));
    assert_eq!(report.settings.filter_selectivity, [0.01]);
    // --quick keeps the concurrent benchmark's clients: the spec's target counts connections.
    let concurrent = &report.results[3];
    assert_eq!(concurrent.clients, 120);
    assert_eq!(concurrent.iterations, 120 * 5);
    let peak = concurrent.peak_server_connections.expect("peak measured");
    assert!((101..=121).contains(&peak), "{concurrent:?}");
    let target = report
        .targets
        .iter()
        .find(|t| t.name == "concurrent server connections")
        .expect("concurrent target");
    assert!(target.pass, "{target:?}");
    assert_eq!(target.measured, peak as f64);
    let bulk = &report.results[4];
    assert_eq!(bulk.rows_per_batch, Some(100));
    let (tps, rows) = (bulk.transactions_per_s.unwrap(), bulk.rows_per_s.unwrap());
    assert!(rows > tps * 50.0, "rows/s {rows} vs transactions/s {tps}");
    assert_eq!(report.targets.len(), 4);
    // The bulk rows landed, warm-up included: 5 + 10 batches of 100 on top of the seeded 3000.
    assert_eq!(rows_written(bulk), 1500);
    assert_eq!(count_rows(&pg).await, 3000 + 1500);
    pg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_insert_adds_every_row_it_reports_on_every_run() {
    // Inserted keys used to restart at the same sequence in every run (and in the warm-up):
    // a rerun upserted the rows of the run before, and the table did not grow.
    let pg = Pg::start().await;
    let reports = temp_dir();
    let url = pg.url();
    let dir = reports.path().to_str().unwrap();
    let mut setup = vec!["setup", "--database-url", &url, "--report-dir", dir];
    setup.extend(SMALL_DATA);
    run_bin(&setup, &[]).await.expect_code(0);
    let mut rows = count_rows(&pg).await;
    assert_eq!(rows, 2000);
    for run in 1..=2 {
        let mut args = vec![
            "bench",
            "--quick",
            "--only",
            "bulk",
            "--database-url",
            &url,
            "--report-dir",
            dir,
        ];
        args.extend(SMALL_DATA);
        run_bin(&args, &[]).await.expect_code(0);
        let report = read_report(reports.path());
        assert_eq!(report.results.len(), 1, "{:?}", report.results);
        let written = rows_written(&report.results[0]);
        assert_eq!(written, (10 + 5) * 100, "run {run}");
        let now = count_rows(&pg).await;
        assert_eq!(
            now - rows,
            written,
            "run {run}: the table grew by {}",
            now - rows
        );
        rows = now;
    }
    pg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_judges_a_similarity_filter_by_what_it_leaves() {
    // With --min-similarity the single-namespace search returns fewer than k rows; its truth
    // must be filtered alike, or a correct short answer scores as a miss.
    let pg = Pg::start().await;
    let reports = temp_dir();
    let url = pg.url();
    let dir = reports.path().to_str().unwrap();
    let mut args = vec![
        "bench",
        "--quick",
        "--only",
        "single",
        "--database-url",
        &url,
        "--report-dir",
        dir,
        "--min-similarity",
        MIN_SIMILARITY,
    ];
    args.extend(SMALL_DATA);
    run_bin(&args, &[]).await.expect_code(0);
    let report = read_report(reports.path());
    let single = &report.results[0];
    assert_eq!(single.operation, "single_shard_search");
    let short = single.short_result_share.unwrap();
    // Most searches come back short, but not all: the filter sits among the neighbours'
    // similarities, so short answers still hold rows to judge (the old code scored 0.32 here).
    assert!(
        short > 0.5 && short < 1.0,
        "the filter must cut most searches short: {short}"
    );
    let recall = single.recall_mean.unwrap();
    assert!(recall >= 0.95, "recall {recall} with {short} short results");
    pg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_reacts_to_ef_search_and_iterative_scan_on_hash_shards() {
    let pg = Pg::start().await;
    let reports = temp_dir();
    let url = pg.url();
    let dir = reports.path().to_str().unwrap();
    // Two shards for eight namespaces: each HNSW index holds four namespaces, so a filter on
    // one namespace discards most of what a small ef_search finds.
    let run = run_bin(
        &[
            "bench",
            "--quick",
            "--only",
            "single",
            "--database-url",
            &url,
            "--report-dir",
            dir,
            "--layout",
            "hash:2",
            "--namespaces",
            "8",
            "--rows-per-namespace",
            "400",
            "--ef-search",
            "4,100",
            "--iterative-scan",
            "off,relaxed_order",
        ],
        &[],
    )
    .await;
    run.expect_code(0);
    let report = read_report(reports.path());
    assert_eq!(report.results.len(), 4, "{:?}", report.results);
    let find = |ef: u32, mode: &str| {
        report
            .results
            .iter()
            .find(|r| r.ef_search == ef && r.iterative_scan == mode)
            .unwrap_or_else(|| panic!("no result for ef_search {ef} {mode}"))
    };
    let low = find(4, "off");
    let high = find(100, "relaxed_order");
    let (low_recall, high_recall) = (low.recall_mean.unwrap(), high.recall_mean.unwrap());
    let (low_short, high_short) = (
        low.short_result_share.unwrap(),
        high.short_result_share.unwrap(),
    );
    assert!(
        high_recall > 0.95,
        "high ef_search with iterative scan: recall {high_recall}"
    );
    assert!(
        low_recall < high_recall - 0.2,
        "recall {low_recall} (ef 4, off) vs {high_recall}"
    );
    assert!(low_short > 0.5, "short results {low_short} (ef 4, off)");
    assert!(
        high_short < low_short,
        "short results {high_short} vs {low_short}"
    );
    let svg = std::fs::read_to_string(reports.path().join("recall_vs_latency.svg")).expect("plot");
    assert!(svg.starts_with("<svg") && svg.contains("ef=4") && svg.contains("ef=100"));
    pg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halfvec_and_ivfflat_store_index_and_sweep_probes() {
    let pg = Pg::start().await;
    let reports = temp_dir();
    let url = pg.url();
    let dir = reports.path().to_str().unwrap();
    // One table, one IVFFlat index of 50 lists over 2,000 half-precision rows in 4 topics
    // (one per namespace): each topic spreads over a dozen lists, so one probe misses many
    // neighbours, and fifty probes scan everything.
    let data = [
        "--layout",
        "single",
        "--namespaces",
        "4",
        "--rows-per-namespace",
        "500",
        "--topics",
        "1",
        "--vector-type",
        "halfvec",
        "--index",
        "ivfflat",
        "--lists",
        "50",
    ];
    let mut args = vec![
        "bench",
        "--quick",
        "--only",
        "single",
        "--database-url",
        &url,
        "--report-dir",
        dir,
        "--probes",
        "1,50",
    ];
    args.extend(data);
    let run = run_bin(&args, &[]).await;
    run.expect_code(0);
    let report = read_report(reports.path());
    assert_eq!(report.settings.vector_type, "halfvec");
    assert_eq!(report.settings.index, "ivfflat");
    assert_eq!(report.settings.lists, Some(50));
    assert_eq!(report.settings.probes, [1, 50]);
    let recall = |probes: u32| {
        let r = report
            .results
            .iter()
            .find(|r| r.probes == Some(probes))
            .unwrap_or_else(|| panic!("no result for probes {probes}: {:?}", report.results));
        r.recall_mean.unwrap()
    };
    let (low, high) = (recall(1), recall(50));
    eprintln!("recall: probes 1 {low}, probes 50 {high}");
    assert!(high >= 0.99, "every list probed is an exact search: {high}");
    assert!(low < high - 0.2, "one probe of 50 lists: {low} vs {high}");
    assert!(run.stdout().contains("probes=50"), "{}", run.stdout());

    let client = pg.client("postgres").await;
    let column: String = client
        .query_one(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'memory_entries'::regclass AND attname = 'embedding'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(column, "halfvec(384)");
    let method: String = client
        .query_one(
            "SELECT am.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_am am ON am.oid = c.relam \
             WHERE i.indrelid = 'memory_entries'::regclass AND c.relname LIKE '%embedding%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(method, "ivfflat");

    // The load test on the same table: every operation (inserts of halfvec rows included)
    // succeeds, and the summary says what was searched.
    let load_dir = temp_dir();
    let mut args = vec![
        "--database-url",
        &url,
        "--report-dir",
        load_dir.path().to_str().unwrap(),
        "--users",
        "4",
        "--hatch-rate",
        "4",
        "--run-time",
        "3s",
        "--think-time",
        "0",
        "--probes",
        "5",
        "--no-metrics-exporter",
    ];
    args.extend(data);
    let run = run_bin(&args, &[]).await;
    run.expect_code(0);
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(load_dir.path().join("load_test_summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["aggregated"]["failed"], 0, "{}", run.dump());
    assert!(summary["aggregated"]["count"].as_u64().unwrap() > 100);
    let index = summary["index"].as_str().unwrap();
    assert_eq!(
        index,
        "halfvec cosine, ivfflat lists=50 probes=5 iterative_scan=off"
    );

    // Asking for another vector type on this table is refused, naming both.
    let mut args = vec!["setup", "--database-url", &url];
    args.extend(&data[..8]);
    let run = run_bin(&args, &[]).await;
    let err = run.usage_error();
    assert!(err.contains("halfvec") && err.contains("--reset"), "{err}");
    pg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_defaults_make_ef_search_matter_and_cross_search_merge() {
    // The first release's data gave recall 1.0 at ef_search 10 (and its truth was the index's
    // own answer on PostgreSQL 18). On the defaults at 5,000 rows per namespace, recall must
    // rise visibly from ef_search 10 to 200, and a cross-namespace top 20 must merge rows of
    // several namespaces, since namespaces share topics.
    let pg = Pg::start().await;
    let reports = temp_dir();
    let url = pg.url();
    let dir = reports.path().to_str().unwrap();
    let args = [
        "bench",
        "--only",
        "single,cross",
        "--single-iterations",
        "300",
        "--cross-iterations",
        "100",
        "--warmup",
        "10",
        "--ef-search",
        "10,200",
        "--namespaces",
        "2",
        "--rows-per-namespace",
        "5000",
        "--cross-namespaces",
        "2",
        "--database-url",
        &url,
        "--report-dir",
        dir,
    ];
    run_bin(&args, &[]).await.expect_code(0);
    let report = read_report(reports.path());
    let find = |op: &str, ef: u32| {
        report
            .results
            .iter()
            .find(|r| r.operation == op && r.ef_search == ef)
            .unwrap_or_else(|| panic!("no {op} at ef_search {ef}: {:?}", report.results))
    };
    let (low, high) = (
        find("single_shard_search", 10).recall_mean.unwrap(),
        find("single_shard_search", 200).recall_mean.unwrap(),
    );
    eprintln!("single-namespace recall@10: ef_search 10 {low}, ef_search 200 {high}");
    assert!(
        low < 0.97,
        "recall {low} at ef_search 10: the data is too easy"
    );
    assert!(high > 0.98, "recall {high} at ef_search 200");
    assert!(low < high - 0.03, "ef_search 10 {low} vs 200 {high}");
    let cross = find("cross_shard_search", 200);
    let distinct = cross.mean_distinct_namespaces.unwrap();
    assert!(
        distinct > 1.5,
        "cross-namespace results from {distinct} namespaces on average"
    );
    pg.stop().await;
}
