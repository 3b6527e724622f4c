//! The README's exit-code table, one case per row, each against real parts: the embedded
//! PostgreSQL with pgvector, Debian's PostgreSQL 15 without it, pgbench, a role that may not
//! write, a signal. Other files prove each behaviour at length; here every code is asserted
//! once, with a few seconds of load at most.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use pgvector_loadtest::report::summary::Summary;
use pgvector_loadtest::report::verdict::Status;

use crate::child::Child;
use crate::scrape::Scraper;
use crate::util::{
    free_port, run_bin, setup, temp_dir, Pg, PlainPg, Run, REPORTS, RUN_TIMEOUT, SMALL_DATA,
};

/// The load test against `url`, reports in `reports`, on the small dataset, plus `extra`.
fn load_args<'a>(url: &'a str, reports: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--database-url",
        url,
        "--report-dir",
        reports.to_str().unwrap(),
        "--no-print-metrics",
    ];
    args.extend(SMALL_DATA);
    args.extend(extra);
    args
}

fn summary(reports: &Path) -> Summary {
    for name in REPORTS {
        assert!(reports.join(name).is_file(), "{name} missing");
    }
    serde_json::from_slice(&std::fs::read(reports.join("load_test_summary.json")).unwrap())
        .expect("summary parses")
}

/// The last line on stderr, which must be the one error line.
fn error_line(run: &Run) -> String {
    let stderr = run.stderr();
    let line = stderr.lines().last().unwrap_or_default().to_string();
    assert!(line.starts_with("error: "), "{}", run.dump());
    eprintln!("exit {}: {line}", run.code);
    line
}

/// Puts a file where the directory `dir` was: nothing can be written below it any more
/// (permissions would not do: the tests run as root).
fn break_dir(dir: &Path) {
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::write(dir, "not a directory").unwrap();
}

#[tokio::test]
async fn code_0_a_clean_run() {
    let pg = Pg::start().await;
    let reports = temp_dir();
    let url = pg.url();
    let extra = ["--users", "2", "--hatch-rate", "2", "--run-time", "2s"];
    let run = run_bin(&load_args(&url, reports.path(), &extra), &[]).await;
    run.expect_code(0);
    let summary = summary(reports.path());
    assert!(summary.aggregated.count > 0, "{:#?}", summary.aggregated);
    assert_eq!(summary.failure_share, 0.0);
    assert!(!summary.interrupted);
    pg.stop().await;
}

#[tokio::test]
async fn code_1_the_database_lost_while_seeding() {
    let pg = Pg::start().await;
    let reports = temp_dir();
    let url = pg.url();
    // Several seconds of COPY and index build: the server goes away in the middle.
    let args = [
        "--database-url",
        &url,
        "--report-dir",
        reports.path().to_str().unwrap(),
        "--namespaces",
        "4",
        "--rows-per-namespace",
        "25000",
        "--users",
        "2",
        "--run-time",
        "2s",
        "--no-metrics-exporter",
    ];
    let mut child = Child::spawn(&args, &[]);
    child.wait_for(&["seeding "], Duration::from_secs(30)).await;
    pg.stop().await;
    let (run, _) = child.finish(RUN_TIMEOUT).await;
    run.expect_code(1);
    let line = error_line(&run);
    assert!(
        line.contains("seeding failed") || line.contains("schema setup failed"),
        "{line}"
    );
}

#[tokio::test]
async fn code_1_bench_and_calibrate_reports_cannot_be_written() {
    let pg = Pg::start().await;
    let url = pg.url();
    setup(&url, temp_dir().path(), &SMALL_DATA).await;
    let dir = temp_dir();
    let reports = dir.path().join("reports");
    let reports_arg = reports.to_str().unwrap();
    let port = free_port().to_string();
    // The exporter's line comes just before the suite starts: 2,000 searches and their
    // recall take seconds.
    let mut args = vec![
        "bench",
        "--only",
        "single",
        "--single-iterations",
        "2000",
        "--database-url",
        &url,
        "--report-dir",
        reports_arg,
        "--metrics-port",
        &port,
    ];
    args.extend(SMALL_DATA);
    let mut child = Child::spawn(&args, &[]);
    child
        .wait_for(&["metrics exporter on"], Duration::from_secs(60))
        .await;
    break_dir(&reports);
    let (run, _) = child.finish(RUN_TIMEOUT).await;
    run.expect_code(1);
    assert!(
        run.stdout().contains("Single-Shard Vector Search"),
        "{}",
        run.dump()
    );
    assert!(error_line(&run).contains("writing benchmark reports"));

    // calibrate: its data is checked, then each side runs 2 s.
    std::fs::remove_file(&reports).unwrap();
    let mut args = vec![
        "calibrate",
        "--op",
        "retrieve",
        "--duration",
        "2s",
        "--warmup",
        "0s",
        "--clients",
        "2",
        "--database-url",
        &url,
        "--report-dir",
        reports_arg,
    ];
    args.extend(SMALL_DATA);
    let mut child = Child::spawn(&args, &[]);
    child
        .wait_for(&["reusing seeded data"], Duration::from_secs(60))
        .await;
    break_dir(&reports);
    let (run, _) = child.finish(RUN_TIMEOUT).await;
    run.expect_code(1);
    assert!(
        run.stdout().contains("retrieve_memory: harness"),
        "{}",
        run.dump()
    );
    let line = error_line(&run);
    assert!(
        line.contains("calibrate: ") && line.contains("calibration.json"),
        "{line}"
    );
    pg.stop().await;
}

#[tokio::test]
async fn code_2_usage_configuration_or_environment() {
    // Bad flags: closed choices name their values.
    for (args, want) in [
        (
            &["--iterative-scan", "sideways", "setup"][..],
            "off, relaxed_order, strict_order",
        ),
        (
            &["bench", "--only", "everything"],
            "single, cross, dataset, filtered, concurrent, bulk",
        ),
        (&["calibrate", "--op", "cross"], "single, retrieve"),
        (&["--users", "0", "setup"], "--users must be at least 1"),
    ] {
        let line = run_bin(args, &[]).await.usage_error();
        assert!(line.contains(want), "{args:?}: {line}");
    }

    // An unreachable server, and one without pgvector: nothing is written.
    let reports = temp_dir();
    let unserved = format!("postgres://postgres@127.0.0.1:{}/postgres", free_port());
    let line = run_bin(&load_args(&unserved, reports.path(), &[]), &[])
        .await
        .usage_error();
    assert!(line.contains("cannot connect to 127.0.0.1:"), "{line}");
    let pg15 = PlainPg::start().await;
    let line = run_bin(&load_args(&pg15.url(), reports.path(), &[]), &[])
        .await
        .usage_error();
    assert!(line.contains("no pgvector extension"), "{line}");
    assert_eq!(std::fs::read_dir(reports.path()).unwrap().count(), 0);

    // calibrate with a PostgreSQL bin dir that has everything but pgbench.
    let pg = Pg::start().await;
    setup(&pg.url(), reports.path(), &SMALL_DATA).await;
    let wheel = tokio::task::spawn_blocking(crate::util::pg_bin)
        .await
        .unwrap();
    let bin = temp_dir();
    for entry in std::fs::read_dir(&wheel).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "pgbench" {
            std::os::unix::fs::symlink(entry.path(), bin.path().join(entry.file_name())).unwrap();
        }
    }
    let url = pg.url();
    let mut args = vec![
        "calibrate",
        "--pg-bin",
        bin.path().to_str().unwrap(),
        "--database-url",
        &url,
        "--report-dir",
        reports.path().to_str().unwrap(),
    ];
    args.extend(SMALL_DATA);
    let run = run_bin(&args, &[]).await;
    run.expect_code(2);
    let line = error_line(&run);
    assert!(line.contains("calibrate: no pgbench in"), "{line}");
    assert!(!reports.path().join("calibration.json").exists());
    pg.stop().await;
}

#[tokio::test]
async fn code_3_an_objective_breached() {
    let pg = Pg::start().await;
    let dir = temp_dir();
    let profile = dir.path().join("impossible.toml");
    std::fs::write(
        &profile,
        r#"
users = 2
hatch_rate = 2
run_time = "2s"

[[objective]]
name = "searches in a microsecond"
metric = "p50_ms"
operation = "searches"
target = 0.001
"#,
    )
    .unwrap();
    let url = pg.url();
    let extra = ["--profile-file", profile.to_str().unwrap()];
    let run = run_bin(&load_args(&url, dir.path(), &extra), &[]).await;
    run.expect_code(3);
    let summary = summary(dir.path());
    let verdict = &summary.objectives[0];
    assert!(
        verdict.gate && verdict.status == Status::Fail,
        "{verdict:?}"
    );
    assert!(
        run.stdout().contains("BREACHED: searches in a microsecond"),
        "{}",
        run.dump()
    );
    pg.stop().await;
}

#[tokio::test]
async fn code_n_of_exit_code_on_error_too_many_failures() {
    // The role may not write: inserts fail (SQLSTATE 42501), about a tenth of the operations.
    let (pg, url) = crate::gate::read_only_server().await;
    let (run, summary, _reports) = crate::gate::load(&url, &["--exit-code-on-error", "5"]).await;
    run.expect_code(5);
    assert_eq!(summary["failure_gate"]["exceeded"].as_bool(), Some(true));
    pg.stop().await;
}

#[tokio::test]
async fn code_130_interrupted_in_steady_state() {
    let pg = Pg::start().await;
    let reports = temp_dir();
    let url = pg.url();
    let port = free_port();
    let port_arg = port.to_string();
    let extra = [
        "--users",
        "4",
        "--hatch-rate",
        "4",
        "--run-time",
        "60s",
        "--metrics-port",
        &port_arg,
    ];
    let mut child = Child::spawn(&load_args(&url, reports.path(), &extra), &[]);
    let scraper = Scraper::start(SocketAddr::from(([127, 0, 0, 1], port)));
    scraper.wait_queries(30.0, &mut child).await;
    child.signal(Signal::SIGINT);
    let (run, took) = child.finish(Duration::from_secs(30)).await;
    drop(scraper.stop());
    run.expect_code(130);
    assert!(took < Duration::from_secs(15), "took {took:?} to stop");
    assert!(summary(reports.path()).interrupted);
    pg.stop().await;
}
