//! The failure gate (`--max-failure-share`, `--exit-code-on-error`): a run whose operations
//! failed does not pass CI. The server rejects every write here: the harness connects as a role
//! that may read `memory_entries` but not write it, so inserts and bulk inserts (about a tenth
//! of the load test's operations, all of the bulk benchmark's) fail with SQLSTATE 42501.

use crate::util::{load_args, run_bin, setup, temp_dir, Pg, Run, REPORTS, SMALL_DATA};

const READER_PASSWORD: &str = "read only";

/// A server with the small dataset and a role `reader` that may only read.
pub async fn read_only_server() -> (Pg, String) {
    let pg = Pg::start().await;
    let seed_reports = temp_dir();
    setup(&pg.url(), seed_reports.path(), &SMALL_DATA).await;
    pg.client("postgres")
        .await
        .batch_execute(&format!(
            "CREATE ROLE reader LOGIN PASSWORD '{READER_PASSWORD}'; \
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader;"
        ))
        .await
        .unwrap();
    let url = format!(
        "postgres://reader:read%20only@127.0.0.1:{}/postgres",
        pg.port()
    );
    (pg, url)
}

/// A short load test as `reader`; returns the run and its summary.
pub async fn load(url: &str, extra: &[&str]) -> (Run, serde_json::Value, tempfile::TempDir) {
    let reports = temp_dir();
    let mut args = load_args(url, reports.path(), "10", "5s");
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_bin(&args, &[]).await;
    for name in REPORTS {
        assert!(
            reports.path().join(name).is_file(),
            "{name} missing\n{}",
            run.dump()
        );
    }
    let summary = serde_json::from_slice(
        &std::fs::read(reports.path().join("load_test_summary.json")).unwrap(),
    )
    .unwrap();
    (run, summary, reports)
}

#[tokio::test]
async fn failed_operations_fail_the_run_unless_the_gate_allows_them() {
    let (pg, url) = read_only_server().await;

    // Defaults: more than 1 % failed, so exit 1, every report written.
    let (run, summary, _r) = load(&url, &[]).await;
    run.expect_code(1);
    let share = summary["failure_share"].as_f64().unwrap();
    let failures = &summary["aggregated"]["failures"];
    eprintln!("failure share {share}: {failures}");
    assert!(share > 0.01 && share < 0.5, "share {share}");
    assert!(failures["sqlstate_42"].as_u64().unwrap() > 0, "{failures}");
    assert_eq!(summary["failure_gate"]["threshold"].as_f64(), Some(0.01));
    assert_eq!(summary["failure_gate"]["exceeded"].as_bool(), Some(true));
    let line = run
        .stdout()
        .lines()
        .find(|l| l.starts_with("failure gate:"))
        .map(String::from)
        .unwrap_or_else(|| panic!("no failure gate line\n{}", run.dump()));
    assert!(line.contains("sqlstate_42="), "{line}");
    assert!(line.ends_with("exit 1"), "{line}");

    // Locust's --exit-code-on-error 0: today's behaviour.
    let (run, summary, _r) = load(&url, &["--exit-code-on-error", "0"]).await;
    run.expect_code(0);
    assert_eq!(summary["failure_gate"]["exceeded"].as_bool(), Some(true));

    // Another code, as Locust allows.
    let (run, _, _r) = load(&url, &["--exit-code-on-error", "7"]).await;
    run.expect_code(7);

    // Under a higher threshold the same failures pass.
    let (run, summary, _r) = load(&url, &["--max-failure-share", "0.5"]).await;
    run.expect_code(0);
    assert_eq!(summary["failure_gate"]["exceeded"].as_bool(), Some(false));
    assert!(run.stdout().contains("within the gate"), "{}", run.dump());
    pg.stop().await;
}

#[tokio::test]
async fn a_benchmark_whose_operations_failed_is_not_a_result() {
    let (pg, url) = read_only_server().await;
    let reports = temp_dir();
    let mut args = vec![
        "bench",
        "--quick",
        "--only",
        "bulk",
        "--database-url",
        &url,
        "--report-dir",
        reports.path().to_str().unwrap(),
        "--no-metrics-exporter",
    ];
    args.extend(SMALL_DATA);
    let run = run_bin(&args, &[]).await;
    run.expect_code(1);
    let results: serde_json::Value = serde_json::from_slice(
        &std::fs::read(reports.path().join("benchmark_results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(results["failure_share"].as_f64(), Some(1.0), "{results:#}");
    assert_eq!(results["failure_gate"]["exceeded"].as_bool(), Some(true));
    assert!(
        run.stdout().contains("failure gate: 100.00 %"),
        "{}",
        run.dump()
    );
    pg.stop().await;
}

#[test]
fn a_share_outside_zero_to_one_is_a_usage_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for bad in ["1.5", "-0.1", "NaN"] {
        let run = runtime.block_on(run_bin(&["--max-failure-share", bad, "setup"], &[]));
        let message = run.usage_error();
        assert!(message.contains("--max-failure-share"), "{bad}: {message}");
    }
}
