//! The console of a load test people watch: the README's 300-user job prints a status line at
//! `--status-interval` when the output is not a terminal, Goose's per-user lines go to
//! `goose.log` instead of the terminal, and the whole run fits in a screen.

use crate::util::{run_bin, temp_dir, Pg, SMALL_DATA};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_user_run_prints_status_lines_not_goose_logging() {
    let pg = Pg::start().await;
    let reports = temp_dir();
    let (url, dir) = (pg.url(), reports.path().to_str().unwrap().to_string());
    let mut args = vec![
        "--database-url",
        &url,
        "--report-dir",
        &dir,
        "--users",
        "300",
        "--hatch-rate",
        "100",
        "--run-time",
        "12s",
        "--status-interval",
        "4s",
        "--no-metrics-exporter",
    ];
    args.extend(SMALL_DATA);
    let run = run_bin(&args, &[]).await;
    run.expect_code(0);
    let (stdout, stderr) = (run.stdout(), run.stderr());
    let lines = stdout.lines().count() + stderr.lines().count();
    assert!(lines < 60, "{lines} lines:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("[INFO]"), "{stdout}");
    let status: Vec<&str> = stderr.lines().filter(|l| l.contains(" ops/s | ")).collect();
    assert!(
        (2..=4).contains(&status.len()),
        "status every 4 s of a 12 s run: {status:?}\n{stderr}"
    );
    let last = status.last().unwrap();
    assert!(last.contains("users") && last.contains("search p95") && last.contains("failed"));
    assert!(last.contains("/ 0:12]"), "{last}");
    let log = std::fs::read_to_string(reports.path().join("goose.log")).expect("goose.log");
    assert!(
        log.contains("launching user"),
        "goose.log has Goose's INFO lines"
    );
    pg.stop().await;
}
