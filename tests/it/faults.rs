//! Server faults during a load run, against real servers on loopback: the primary stopped and
//! started again on the same port and data, every harness backend killed with
//! `pg_terminate_backend`, queries held past `--statement-timeout` by a table lock, and a
//! streaming replica stopped and started under `--replica-url`.
//!
//! Each run must finish with exit 0, count every failed operation under its class, recover
//! (operations succeed after the fault, in the history CSV), and report the same counts in
//! `load_test_stats.csv`, `load_test_summary.json`, Goose's `load_test.json` and
//! `load_test.html`, and `/metrics` (scraped until the exporter stops).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pgvector_loadtest::db::embedded::{
    default_home, ensure_install, EmbeddedOptions, EmbeddedServer,
};
use pgvector_loadtest::report::summary::Summary;
use tempfile::TempDir;

use crate::child::Child;
use crate::scrape::{Scrape, Scraper};
use crate::util::{encode, free_port, temp_dir, Run, SMALL_DATA};

/// A bound on every run here: 20 s of load plus setup and the faults.
const LIMIT: Duration = Duration::from_secs(90);

/// An embedded server that can be stopped and started again on the same port and data.
pub struct Restartable {
    server: Option<EmbeddedServer>,
    home: PathBuf,
    name: String,
    port: u16,
    bin: PathBuf,
    /// Kept across restarts (the cluster keeps it too), so the URL outlives a stop.
    password: String,
}

impl Restartable {
    fn options(&self) -> EmbeddedOptions {
        EmbeddedOptions {
            home: self.home.clone(),
            name: self.name.clone(),
            port: Some(self.port),
            pg_bin: Some(self.bin.clone()),
            max_connections: 100,
            settings: vec![("shared_buffers".into(), "64MB".into())],
            ..EmbeddedOptions::default()
        }
    }

    /// A fresh primary in `home`.
    pub async fn primary(home: &Path) -> Restartable {
        let bin = tokio::task::spawn_blocking(|| ensure_install(&default_home(), None))
            .await
            .unwrap()
            .expect("embedded PostgreSQL install");
        let mut me = Restartable {
            server: None,
            home: home.to_path_buf(),
            name: "primary".into(),
            port: free_port(),
            bin,
            password: String::new(),
        };
        me.start().await;
        me
    }

    /// A streaming replica of this server.
    async fn replica(&self, name: &str) -> Restartable {
        let server = self.server().start_replica(name).await.expect("replica");
        Restartable {
            port: server.port(),
            password: server.password().to_string(),
            server: Some(server),
            home: self.home.clone(),
            name: name.into(),
            bin: self.bin.clone(),
        }
    }

    fn server(&self) -> &EmbeddedServer {
        self.server.as_ref().expect("running")
    }

    /// Fast shutdown: backends are terminated, new connections refused.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("server stops");
        }
    }

    /// Starts (again) on the same port and data directory.
    pub async fn start(&mut self) {
        assert!(self.server.is_none());
        let server = EmbeddedServer::start(self.options())
            .await
            .expect("server starts");
        self.password = server.password().to_string();
        self.server = Some(server);
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres",
            encode(&self.password),
            self.port
        )
    }

    /// A client of database `postgres`.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
    }
}

/// Count and failures of each operation (and "Aggregated") as one report says.
pub type Counts = BTreeMap<String, (u64, u64)>;

/// The reports of one run, read back.
pub struct Reports {
    pub summary: Summary,
    pub stats_csv: Counts,
    pub goose_json: Counts,
    pub goose_html: Counts,
    /// `load_test_failures.csv`: (operation, error) -> occurrences.
    pub failures_csv: BTreeMap<(String, String), u64>,
    /// Aggregated rows of the history: (unix time, total requests, total failures).
    pub history: Vec<(u64, u64, u64)>,
}

impl Reports {
    pub fn read(dir: &Path) -> Reports {
        let summary: Summary = serde_json::from_slice(
            &std::fs::read(dir.join("load_test_summary.json")).expect("summary written"),
        )
        .expect("summary parses");
        let mut stats_csv = Counts::new();
        let mut stats = csv::Reader::from_path(dir.join("load_test_stats.csv")).unwrap();
        for row in stats.records().map(Result::unwrap) {
            stats_csv.insert(
                row[1].into(),
                (row[2].parse().unwrap(), row[3].parse().unwrap()),
            );
        }
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("load_test.json")).unwrap()).unwrap();
        let mut goose_json = Counts::new();
        for (key, r) in json["raw_metrics"]["requests"]
            .as_object()
            .expect("requests")
        {
            let ok = r["success_count"].as_u64().unwrap();
            let failed = r["fail_count"].as_u64().unwrap();
            let name = key.strip_prefix("SQL ").unwrap_or(key).to_string();
            goose_json.insert(name, (ok + failed, failed));
        }
        let html = std::fs::read_to_string(dir.join("load_test.html")).unwrap();
        let mut goose_html = Counts::new();
        for o in &summary.operations {
            // The first table: <td>NAME</td> <td>COUNT</td> <td>FAILURES</td>.
            let at = html
                .find(&format!("<td>{}</td>", o.name))
                .unwrap_or_else(|| panic!("{} not in load_test.html", o.name));
            let cells: Vec<u64> = html[at..]
                .split("<td>")
                .skip(2)
                .take(2)
                .map(|c| c.split("</td>").next().unwrap().trim().parse().unwrap())
                .collect();
            goose_html.insert(o.name.clone(), (cells[0], cells[1]));
        }
        let mut failures_csv = BTreeMap::new();
        let mut failures = csv::Reader::from_path(dir.join("load_test_failures.csv")).unwrap();
        for row in failures.records().map(Result::unwrap) {
            failures_csv.insert((row[1].into(), row[2].into()), row[3].parse().unwrap());
        }
        let mut history = Vec::new();
        let mut rows = csv::Reader::from_path(dir.join("load_test_stats_history.csv")).unwrap();
        for row in rows.records().map(Result::unwrap) {
            if &row[3] == "Aggregated" {
                history.push((
                    row[0].parse().unwrap(),
                    row[17].parse().unwrap(),
                    row[18].parse().unwrap(),
                ));
            }
        }
        Reports {
            summary,
            stats_csv,
            goose_json,
            goose_html,
            failures_csv,
            history,
        }
    }

    /// The summary's counts, as the other reports are compared against it.
    pub fn summary_counts(&self) -> Counts {
        let mut c: Counts = self
            .summary
            .operations
            .iter()
            .map(|o| (o.name.clone(), (o.count, o.failed)))
            .collect();
        let a = &self.summary.aggregated;
        c.insert("Aggregated".into(), (a.count, a.failed));
        c
    }

    /// Asserts the CSV, Goose's JSON and HTML, the failures CSV and the final `/metrics`
    /// scrape all carry the summary's counts.
    pub fn assert_consistent(&self, last: Option<&Scrape>) {
        let want = self.summary_counts();
        assert_eq!(self.stats_csv, want, "load_test_stats.csv vs summary");
        let mut ops = want.clone();
        ops.remove("Aggregated");
        assert_eq!(self.goose_json, ops, "load_test.json vs summary");
        assert_eq!(self.goose_html, ops, "load_test.html vs summary");
        for o in &self.summary.operations {
            assert_eq!(o.failed, o.failures.values().sum::<u64>(), "{o:#?}");
            assert_eq!(o.count, o.ok + o.failed);
            for (class, n) in &o.failures {
                assert_eq!(
                    self.failures_csv.get(&(o.name.clone(), class.clone())),
                    Some(n),
                    "failures csv {:?}",
                    self.failures_csv
                );
            }
        }
        assert_eq!(
            self.failures_csv.values().sum::<u64>(),
            self.summary.aggregated.failed
        );
        let last_history = self.history.last().expect("history rows");
        assert_eq!(
            (last_history.1, last_history.2),
            want["Aggregated"],
            "history's last totals"
        );
        if let Some(scrape) = last {
            // The exporter stops right after the reports are written, so the last scrape
            // (every 50 ms) may miss the users' final operations: at most one per user.
            let mut behind = 0;
            for (op, (count, _)) in &ops {
                let scraped = scrape.queries.get(op).copied().unwrap_or(0.0) as u64;
                assert!(scraped <= *count, "/metrics {op}: {scraped} > {count}");
                behind += count - scraped;
            }
            for (class, n) in &self.summary.aggregated.failures {
                let scraped = scrape.errors.get(class).copied().unwrap_or(0.0) as u64;
                assert!(scraped <= *n, "/metrics errors {class}: {scraped} > {n}");
                behind += n - scraped;
            }
            eprintln!("last /metrics scrape {behind} operations behind the reports");
            assert!(behind <= 8, "/metrics behind the reports by {behind}");
        }
    }

    /// Requests and failures in the history after unix time `t` (from the last row at or
    /// before `t` to the last row).
    pub fn after(&self, t: u64) -> (u64, u64) {
        let before = self
            .history
            .iter()
            .rev()
            .find(|r| r.0 <= t)
            .map_or((0, 0), |r| (r.1, r.2));
        let last = self.history.last().map_or((0, 0), |r| (r.1, r.2));
        (last.0 - before.0, last.1 - before.1)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Starts a 20 s load run of 8 users against `url` with its exporter on a free port; returns
/// the child, the scraper (load already flowing) and the report dir.
pub async fn start_run(url: &str, extra: &[&str]) -> (Child, Scraper, TempDir) {
    let reports = temp_dir();
    let port = free_port().to_string();
    let mut args = vec![
        "--database-url",
        url,
        "--report-dir",
        reports.path().to_str().unwrap(),
        "--users",
        "8",
        "--hatch-rate",
        "8",
        "--run-time",
        "20s",
        "--no-print-metrics",
        "--metrics-port",
        &port,
        "--poll-interval",
        "300ms",
    ];
    args.extend(SMALL_DATA);
    args.extend(extra);
    let mut child = Child::spawn(&args, &[]);
    let scraper = Scraper::start(SocketAddr::from(([127, 0, 0, 1], port.parse().unwrap())));
    scraper.wait_queries(20.0, &mut child).await;
    (child, scraper, reports)
}

/// Waits for the run's end; asserts exit 0 and reads the reports.
pub async fn finish(
    child: Child,
    scraper: Scraper,
    reports: &TempDir,
) -> (Run, Reports, Vec<Scrape>) {
    let (run, _) = child.finish(LIMIT).await;
    run.expect_code(0);
    let scrapes = scraper.stop().into_iter().map(|(_, s)| s).collect();
    let r = Reports::read(reports.path());
    eprintln!("{:?}", r.summary.aggregated.failures);
    (run, r, scrapes)
}

#[tokio::test]
async fn primary_restart_mid_run_is_counted_and_recovered() {
    let home = temp_dir();
    let mut pg = Restartable::primary(home.path()).await;
    let url = pg.url();
    // Operations fail during the outage, on purpose: the failure gate is off.
    let (child, scraper, reports) = start_run(&url, &["--exit-code-on-error", "0"]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = scraper.queries();
    pg.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.start().await;
    let up_again = unix_now();
    let (_, r, scrapes) = finish(child, scraper, &reports).await;

    let agg = &r.summary.aggregated;
    eprintln!(
        "restart: {} ops, {} failed {:?}; {before} ops before the stop",
        agg.count, agg.failed, agg.failures
    );
    // Every failure is a lost connection (admin shutdown, refused, starting up); none is a
    // pool timeout or an unclassified client error.
    assert!(
        agg.failures.get("connection_lost").copied().unwrap_or(0) >= 1,
        "{agg:#?}"
    );
    assert_eq!(
        agg.failures.keys().collect::<Vec<_>>(),
        vec!["connection_lost"],
        "{agg:#?}"
    );
    // The pool recovered: operations succeeded after the server was back (the history's
    // totals grew by more than its failures), at a rate like before the fault.
    let (requests, failed) = r.after(up_again + 1);
    assert!(
        requests - failed >= 20,
        "after restart: {requests} requests, {failed} failed"
    );
    // A down server fails checkouts at once (refused), rather than parking them until the
    // 30 s pool timeout; and the run kept to its 20 s.
    assert!(agg.pool_wait_us.max < 5_000_000, "{:#?}", agg.pool_wait_us);
    assert!(r.summary.duration_s < 25.0, "{}", r.summary.duration_s);
    r.assert_consistent(scrapes.last());
    assert!(!r.summary.interrupted);
    pg.stop().await;
}

#[tokio::test]
async fn terminated_backends_and_statement_timeouts_are_counted() {
    let home = temp_dir();
    let mut pg = Restartable::primary(home.path()).await;
    let url = pg.url();
    let (child, scraper, reports) = start_run(
        &url,
        &["--statement-timeout", "300ms", "--exit-code-on-error", "0"],
    )
    .await;
    let admin = pg.client().await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Fault 1: every connection of the harness killed.
    let killed: i64 = admin
        .query_one(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name LIKE 'pgvector-loadtest%' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "no harness backend to terminate");
    let after_kill = unix_now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let lost_by_then = scraper
        .last()
        .and_then(|s| s.errors.get("connection_lost").copied())
        .unwrap_or(0.0);

    // Fault 2: every query waits on a lock for longer than --statement-timeout (300 ms).
    admin
        .batch_execute("BEGIN; LOCK TABLE memory_entries IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    admin.batch_execute("COMMIT").await.unwrap();
    let unlocked = unix_now();
    let (_, r, scrapes) = finish(child, scraper, &reports).await;

    let agg = &r.summary.aggregated;
    eprintln!(
        "terminate {killed} backends + 3 s lock: {} ops, {} failed {:?}",
        agg.count, agg.failed, agg.failures
    );
    let lost = agg.failures.get("connection_lost").copied().unwrap_or(0);
    let timeouts = agg.failures.get("statement_timeout").copied().unwrap_or(0);
    // A terminated backend fails at most the one operation that next uses it.
    assert!(
        (1..=killed as u64).contains(&lost),
        "lost {lost} of {killed} killed"
    );
    assert_eq!(
        lost_by_then as u64, lost,
        "connection losses after the lock"
    );
    // 8 users blocked 3 s, each attempt cancelled after 300 ms: at least a few, at most
    // one per user per 300 ms.
    assert!(
        (4..=8 * 11).contains(&timeouts),
        "{timeouts} statement timeouts"
    );
    assert_eq!(agg.failed, lost + timeouts, "{agg:#?}");
    let (requests, failed) = r.after(after_kill + 1);
    assert!(
        requests - failed >= 20,
        "after the kill: {requests}/{failed}"
    );
    let (requests, failed) = r.after(unlocked + 1);
    assert!(
        requests - failed >= 20,
        "after the lock: {requests}/{failed}"
    );
    r.assert_consistent(scrapes.last());
    pg.stop().await;
}

#[tokio::test]
async fn replica_stop_and_start_is_counted_and_replica_up_follows() {
    let home = temp_dir();
    let mut pg = Restartable::primary(home.path()).await;
    let mut replica = pg.replica("replica1").await;
    let (url, replica_url) = (pg.url(), replica.url());
    let (child, scraper, reports) = start_run(
        &url,
        &["--replica-url", &replica_url, "--exit-code-on-error", "0"],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while scraper.last().and_then(|s| s.replica_up) != Some(1.0) {
        assert!(Instant::now() < deadline, "replica_up never 1");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    replica.stop().await;
    let stopped_at = Instant::now();
    let deadline = stopped_at + Duration::from_secs(10);
    while scraper.last().and_then(|s| s.replica_up) != Some(0.0) {
        assert!(
            Instant::now() < deadline,
            "replica_up never 0 with the replica down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let down_seen = stopped_at.elapsed();
    let reads_failed_while_down = scraper.last().unwrap().errors.clone();
    tokio::time::sleep(Duration::from_secs(2)).await;
    replica.start().await;
    let up_again = unix_now();
    let deadline = Instant::now() + Duration::from_secs(10);
    while scraper.last().and_then(|s| s.replica_up) != Some(1.0) {
        assert!(Instant::now() < deadline, "replica_up not back to 1");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, r, scrapes) = finish(child, scraper, &reports).await;

    let agg = &r.summary.aggregated;
    eprintln!(
        "replica stop: replica_up 0 seen after {down_seen:?}; {} ops, {} failed {:?}",
        agg.count, agg.failed, agg.failures
    );
    assert_eq!(
        agg.failures.keys().collect::<Vec<_>>(),
        vec!["connection_lost"],
        "{agg:#?}"
    );
    assert!(reads_failed_while_down.contains_key("connection_lost") || agg.failed > 0);
    // Only reads go to the replica: the writes never failed.
    for o in &r.summary.operations {
        if o.name.contains("insert") {
            assert_eq!(o.failed, 0, "{o:#?}");
        }
    }
    let (requests, failed) = r.after(up_again + 1);
    assert!(
        requests - failed >= 20,
        "after the replica came back: {requests}/{failed}"
    );
    assert!(agg.pool_wait_us.max < 5_000_000, "{:#?}", agg.pool_wait_us);
    assert!(r.summary.duration_s < 25.0, "{}", r.summary.duration_s);
    r.assert_consistent(scrapes.last());
    pg.stop().await;
    replica.stop().await;
}
