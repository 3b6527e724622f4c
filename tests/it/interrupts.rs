//! SIGINT and SIGTERM against the binary running its embedded server (in a private home):
//! during seeding, during ramp-up and in steady state. Each ends with exit 130, the embedded
//! postmaster gone (checked by pid), no temporary files left in the report directory, and —
//! when the load phase had begun — every report written, parseable and marked interrupted. A
//! second signal exits at once.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use pgvector_loadtest::db::embedded::password_path;
use pgvector_loadtest::report::summary::Summary;
use tempfile::TempDir;

use crate::child::Child;
use crate::scrape::Scraper;
use crate::util::{encode, free_port, temp_dir, Run, REPORTS};

/// A run of the binary on its own embedded server.
struct Embedded {
    home: TempDir,
    reports: TempDir,
    metrics: u16,
    child: Child,
}

async fn start(extra: &[&str]) -> Embedded {
    let home = temp_dir();
    let reports = temp_dir();
    let bin = crate::util::embedded_bin().await;
    let metrics = free_port();
    let port = metrics.to_string();
    let mut args = vec![
        "--pg-bin",
        &bin,
        "--report-dir",
        reports.path().to_str().unwrap(),
        "--metrics-port",
        &port,
        "--no-print-metrics",
        "--namespaces",
        "4",
    ];
    args.extend(extra);
    let child = Child::spawn(
        &args,
        &[("PGVECTOR_LOADTEST_HOME", home.path().to_str().unwrap())],
    );
    Embedded {
        home,
        reports,
        metrics,
        child,
    }
}

impl Embedded {
    /// The postmaster's pid, once the server is up.
    async fn postmaster(&mut self) -> i32 {
        // The whole line, port included: stderr arrives in chunks.
        self.child
            .wait_for(&["embedded server on 127.0.0.1:"], Duration::from_secs(60))
            .await;
        self.child
            .wait_for(&[" (log: "], Duration::from_secs(10))
            .await;
        let file = self.home.path().join("data/primary/postmaster.pid");
        let text = std::fs::read_to_string(&file).expect("postmaster.pid");
        text.lines().next().unwrap().trim().parse().unwrap()
    }

    fn scraper(&self) -> Scraper {
        Scraper::start(SocketAddr::from(([127, 0, 0, 1], self.metrics)))
    }
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Waits up to 10 s for `pid` to be gone (the harness stopped it, or it stops itself after
/// the harness signalled it); panics otherwise.
async fn assert_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "postmaster {pid} still running 10 s after the harness exited"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

fn assert_no_temp_files(dir: &Path) {
    let names = names(dir);
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with(".tmp") || n.ends_with(".tmp")),
        "temporary files left: {names:?}"
    );
}

/// Asserts every report is there and complete; returns the summary.
fn assert_reports(dir: &Path) -> Summary {
    assert_no_temp_files(dir);
    for name in REPORTS {
        assert!(dir.join(name).is_file(), "{name} missing: {:?}", names(dir));
    }
    let _: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("load_test.json")).unwrap())
            .expect("load_test.json complete");
    let html = std::fs::read_to_string(dir.join("load_test.html")).unwrap();
    assert!(
        html.trim_end().ends_with("</html>"),
        "load_test.html cut short"
    );
    let summary: Summary =
        serde_json::from_slice(&std::fs::read(dir.join("load_test_summary.json")).unwrap())
            .expect("summary complete");
    let rows = csv::Reader::from_path(dir.join("load_test_stats.csv"))
        .unwrap()
        .records()
        .count();
    assert_eq!(rows, summary.operations.len() + 1, "stats rows");
    summary
}

async fn interrupted(run: &Run, took: Duration, pid: i32) {
    run.expect_code(130);
    assert!(
        took < Duration::from_secs(15),
        "took {took:?} to stop after the signal"
    );
    assert_gone(pid).await;
}

/// Four users that reach steady state at once and would run a minute.
const STEADY: &[&str] = &[
    "--rows-per-namespace",
    "500",
    "--users",
    "4",
    "--hatch-rate",
    "4",
    "--run-time",
    "60s",
];
#[tokio::test]
async fn signal_in_steady_state_writes_reports_and_stops_the_server() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let mut e = start(STEADY).await;
        let pid = e.postmaster().await;
        let scraper = e.scraper();
        scraper.wait_queries(30.0, &mut e.child).await;
        e.child.signal(signal);
        let (run, took) = e.child.finish(Duration::from_secs(60)).await;
        drop(scraper.stop());
        eprintln!("{signal} in steady state: exit {} after {took:?}", run.code);
        interrupted(&run, took, pid).await;
        let summary = assert_reports(e.reports.path());
        assert!(summary.interrupted);
        assert_eq!(summary.max_users, 4);
        assert!(summary.aggregated.count >= 30, "{:#?}", summary.aggregated);
        assert!(summary.duration_s < 30.0, "{}", summary.duration_s);
        assert!(
            run.stdout().contains("reports written to"),
            "{}",
            run.dump()
        );
    }
}

#[tokio::test]
async fn signal_in_ramp_up_writes_reports_of_the_users_started() {
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        // One user a second: 20 users would take 20 s.
        let mut e = start(&[
            "--rows-per-namespace",
            "500",
            "--users",
            "20",
            "--hatch-rate",
            "1",
            "--run-time",
            "60s",
        ])
        .await;
        let pid = e.postmaster().await;
        let scraper = e.scraper();
        scraper.wait_queries(1.0, &mut e.child).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        e.child.signal(signal);
        let (run, took) = e.child.finish(Duration::from_secs(60)).await;
        drop(scraper.stop());
        eprintln!("{signal} in ramp-up: exit {} after {took:?}", run.code);
        interrupted(&run, took, pid).await;
        let summary = assert_reports(e.reports.path());
        assert!(summary.interrupted);
        assert!(
            (1..20).contains(&summary.max_users),
            "max users {}",
            summary.max_users
        );
        assert!(summary.aggregated.count >= 1);
    }
}

/// A dataset that takes several seconds to copy and index.
const BIG: [&str; 6] = [
    "--rows-per-namespace",
    "25000",
    "--users",
    "2",
    "--run-time",
    "5s",
];

#[tokio::test]
async fn signal_while_seeding_stops_the_server_and_writes_nothing() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let mut e = start(&BIG).await;
        let pid = e.postmaster().await;
        e.child
            .wait_for(&["seeding "], Duration::from_secs(30))
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        e.child.signal(signal);
        let (run, took) = e.child.finish(Duration::from_secs(60)).await;
        eprintln!("{signal} while seeding: exit {} after {took:?}", run.code);
        interrupted(&run, took, pid).await;
        // No load phase: no reports, and no temporary files.
        assert_eq!(names(e.reports.path()), Vec::<String>::new());
        assert!(!run.stderr().contains("copied "), "seeding finished first");
    }
}

#[tokio::test]
async fn second_signal_exits_at_once() {
    let mut e = start(STEADY).await;
    // A previous run's reports, which a hard exit must leave as they were (Goose truncates
    // its report files when it starts: it writes to temporary names instead).
    for name in ["load_test.html", "load_test.json"] {
        std::fs::write(e.reports.path().join(name), "previous run").unwrap();
    }
    let pid = e.postmaster().await;
    let stderr = e.child.stderr();
    let port: u16 = stderr
        .split("embedded server on 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("embedded server port on stderr");
    let scraper = e.scraper();
    scraper.wait_queries(10.0, &mut e.child).await;
    // Every query now blocks on a lock (no statement timeout): the drain after the first
    // signal cannot finish by itself.
    // The embedded server requires the password the binary stored beside its data.
    let password = std::fs::read_to_string(password_path(e.home.path(), "primary")).unwrap();
    let (admin, conn) = tokio_postgres::connect(
        &format!(
            "postgres://postgres:{}@127.0.0.1:{port}/postgres",
            encode(password.trim_end())
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    admin
        .batch_execute("BEGIN; LOCK TABLE memory_entries IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    e.child.signal(Signal::SIGTERM);
    e.child
        .wait_for(&["signal received"], Duration::from_secs(5))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        alive(e.child.pid()),
        "exited on the first signal although blocked"
    );
    e.child.signal(Signal::SIGINT);
    let (run, took) = e.child.finish(Duration::from_secs(30)).await;
    drop(scraper.stop());
    eprintln!("second signal: exit {} after {took:?}", run.code);
    run.expect_code(130);
    assert!(took < Duration::from_secs(2), "second signal took {took:?}");
    assert!(run.stderr().contains("second signal"), "{}", run.dump());
    assert_gone(pid).await;
    assert_no_temp_files(e.reports.path());
    for name in ["load_test.html", "load_test.json"] {
        let text = std::fs::read_to_string(e.reports.path().join(name)).unwrap();
        assert_eq!(text, "previous run", "{name} after a hard exit");
    }
}

#[tokio::test]
async fn two_signals_while_the_servers_start_leave_none_running() {
    // A replica to start after the primary: the signals arrive while Endpoints::open is still
    // at work, before the load test (and its shutdown path) exists.
    let mut args = STEADY.to_vec();
    args.extend(["--embedded-replicas", "1"]);
    let mut e = start(&args).await;
    let pid = e.postmaster().await;
    e.child.signal(Signal::SIGINT);
    e.child.signal(Signal::SIGINT);
    let (run, took) = e.child.finish(Duration::from_secs(30)).await;
    eprintln!(
        "two signals while starting: exit {} after {took:?}",
        run.code
    );
    run.expect_code(130);
    assert_gone(pid).await;
    let replica = e.home.path().join("data/replica1/postmaster.pid");
    if let Ok(text) = std::fs::read_to_string(&replica) {
        let replica_pid: i32 = text.lines().next().unwrap().trim().parse().unwrap();
        assert_gone(replica_pid).await;
    }
}
